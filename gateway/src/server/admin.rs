//! `lakegate.admin.v1.Admin`: sources, plugins, counters, flush.

use std::sync::Arc;

use lakegate_plugin_sdk::host::validate::schema_1_1_0;
use lakegate_plugin_sdk::Manifest;
use lakegate_proto::admin::v1::admin_server::Admin;
use lakegate_proto::admin::v1::{
    ClassDeclaration, Counters as ProtoCounters, FlushRequest, FlushResponse, ListPluginsRequest,
    ListPluginsResponse, ListSourcesRequest, ListSourcesResponse, Plugin, Source,
};
use tonic::{Request, Response, Status};

use crate::pipeline::Pipeline;
use crate::sources::{Counters, Sources};

/// The admin service.
pub struct AdminService {
    pub sources: Arc<Sources>,
    pub pipeline: Pipeline,
}

fn plugin(path: &std::path::Path, m: &Manifest, sha256: &str, interface: &str) -> Plugin {
    Plugin {
        name: m.name.clone(),
        version: m.version.clone(),
        vendor: m.vendor.clone(),
        product: m.product.clone(),
        description: m.description.clone(),
        ocsf_version: m.ocsf_version.clone(),
        framings: m.framings.iter().map(|f| f.name().to_string()).collect(),
        classes: m
            .classes
            .iter()
            .map(|c| ClassDeclaration {
                class_uid: c.class_uid,
                class_name: schema_1_1_0()
                    .class_name(c.class_uid)
                    .unwrap_or_default()
                    .to_string(),
                attributes: c.attributes.clone(),
            })
            .collect(),
        path: path.display().to_string(),
        sha256: sha256.to_string(),
        interface: interface.to_string(),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_sources(
        &self,
        _: Request<ListSourcesRequest>,
    ) -> Result<Response<ListSourcesResponse>, Status> {
        let sources = self
            .sources
            .by_name
            .values()
            .map(|s| {
                let c = &s.counters;
                Source {
                    name: s.name.clone(),
                    plugin: s.manifest.name.clone(),
                    region: s.region.clone(),
                    account_id: s.account.clone(),
                    framing: s.framing.name().to_string(),
                    lake_sources: s
                        .tables
                        .iter()
                        .map(|(class, t)| (*class, t.lake_source.to_string()))
                        .collect(),
                    counters: Some(ProtoCounters {
                        received_records: Counters::get(&c.received_records),
                        received_bytes: Counters::get(&c.received_bytes),
                        read: Counters::get(&c.read),
                        events_acknowledged: Counters::get(&c.events_acknowledged),
                        events_written: Counters::get(&c.events_written),
                        rejected: Counters::get(&c.rejected),
                        dead_lettered: Counters::get(&c.dead_lettered),
                        files_written: Counters::get(&c.files_written),
                        last_write_ms: c.last_write_ms.load(std::sync::atomic::Ordering::Relaxed),
                    }),
                }
            })
            .collect();
        Ok(Response::new(ListSourcesResponse { sources }))
    }

    async fn list_plugins(
        &self,
        _: Request<ListPluginsRequest>,
    ) -> Result<Response<ListPluginsResponse>, Status> {
        let plugins = self
            .sources
            .plugins
            .values()
            .map(|(path, m, info)| plugin(path, m, &info.sha256, info.interface))
            .collect();
        Ok(Response::new(ListPluginsResponse { plugins }))
    }

    async fn flush(&self, _: Request<FlushRequest>) -> Result<Response<FlushResponse>, Status> {
        let flushed = self.pipeline.flush().await.map_err(Status::unavailable)?;
        Ok(Response::new(FlushResponse {
            files: flushed.files,
            events: flushed.events,
        }))
    }
}
