//! Compiles the .proto files with protox (pure Rust: no protoc needed) and generates the tonic
//! services, plus the descriptor set that server reflection serves.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "lakegate/ingest/v1/ingest.proto",
        "lakegate/admin/v1/admin.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("lakegate_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // `bytes` fields as `Bytes`: a record's data is a slice of the received message, not a copy.
    tonic_prost_build::configure()
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
