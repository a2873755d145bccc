//! AWS VPC Flow Logs to OCSF 1.1.0 Network Activity (4001): the default version 2 format and
//! custom formats (fields of versions 2 to 8, in the order a header line gives).

mod format;

use std::borrow::Cow;

use lakegate_plugin_sdk::ocsf::{
    self, class, Action, Cloud, Datetime, Disposition, NetworkActivity, NetworkActivityActivity,
    NetworkEndpoint, Unmapped,
};
use lakegate_plugin_sdk::{export_source, Framing, Manifest, Output, Reject, Source};

use format::{Field, Format};

/// The VPC Flow Logs plugin.
pub struct VpcFlow;

impl Source for VpcFlow {
    fn manifest() -> Manifest {
        Manifest::new("aws-vpc-flow", env!("CARGO_PKG_VERSION"))
            .product("AWS", "Amazon VPC")
            .description("VPC Flow Logs text records, default or custom format; a header line sets the field order")
            .framing(Framing::TextLines)
            .class(
                class::NETWORK_ACTIVITY,
                &[
                    "time", "time_dt", "start_time", "start_time_dt", "end_time", "end_time_dt", "severity_id",
                    "action_id", "disposition_id", "status_code", "status_detail",
                    "metadata.version", "metadata.profiles", "metadata.product.name",
                    "metadata.product.vendor_name", "metadata.product.version", "metadata.product.feature.name",
                    "cloud.provider", "cloud.region", "cloud.zone", "cloud.account.uid",
                    "src_endpoint.ip", "src_endpoint.port", "src_endpoint.svc_name", "src_endpoint.intermediate_ips",
                    "src_endpoint.interface_uid", "src_endpoint.vpc_uid", "src_endpoint.subnet_uid",
                    "src_endpoint.instance_uid",
                    "dst_endpoint.ip", "dst_endpoint.port", "dst_endpoint.svc_name", "dst_endpoint.intermediate_ips",
                    "dst_endpoint.interface_uid", "dst_endpoint.vpc_uid", "dst_endpoint.subnet_uid",
                    "dst_endpoint.instance_uid",
                    "connection_info.direction_id", "connection_info.protocol_num", "connection_info.tcp_flags",
                    "connection_info.protocol_ver_id", "connection_info.boundary_id",
                    "traffic.packets", "traffic.bytes", "unmapped",
                ],
            )
    }

    fn translate(record: &[u8], out: &mut Output<'_>) -> Result<(), Reject> {
        let line =
            std::str::from_utf8(record).map_err(|_| Reject::new("record is not UTF-8 text"))?;
        if let Some(header) = Format::parse_header(line) {
            // A header names the fields of the lines after it, in this batch and the next ones.
            header.map_err(Reject::new)?;
            out.set_carry(Some(line.as_bytes().to_vec()));
            return Ok(());
        }
        let mut event = EVENT.take().unwrap_or_else(flow_event);
        let filled = format::with_format(out.carry(), |format| {
            translate_line(format, line, &mut event)
        });
        if filled.is_ok() {
            out.emit(&*event);
        }
        EVENT.set(Some(event));
        filled
    }
}

export_source!(VpcFlow);

thread_local! {
    /// The previous record's event, filled in again for the next one: every record sets the
    /// same members, so their strings and boxes are reused rather than allocated, dropped and
    /// moved per record (a flow record has a dozen of them). `metadata` is the same for every
    /// record but for the flow log version.
    static EVENT: std::cell::Cell<Option<Box<NetworkActivity>>> = const { std::cell::Cell::new(None) };
}

/// A flow event before its first record: the members every record has.
fn flow_event() -> Box<NetworkActivity> {
    let mut metadata = ocsf::metadata("AWS", "Amazon VPC");
    metadata.profiles = vec!["cloud".into(), "security_control".into(), "datetime".into()];
    if let Some(product) = metadata.product.as_mut() {
        product.feature = Some(Box::new(ocsf::Feature {
            name: Some("Flowlogs".into()),
            ..Default::default()
        }));
    }
    Box::new(NetworkActivity {
        severity_id: ocsf::Severity::Informational,
        metadata: Some(metadata),
        cloud: Some(Box::new(Cloud {
            provider: Some("AWS".into()),
            ..Default::default()
        })),
        src_endpoint: Some(Box::default()),
        dst_endpoint: Some(Box::default()),
        connection_info: Some(Box::default()),
        ..Default::default()
    })
}

/// Sets `slot` to `value`, reusing the string already there.
fn set_text(slot: &mut Option<String>, value: Option<&str>) {
    match value {
        Some(value) => value.clone_into(slot.get_or_insert_default()),
        None => *slot = None,
    }
}

/// Fills `event` with the Network Activity record of the fields of `line`; on a fault, leaves
/// it as it was.
fn translate_line(format: &Format, line: &str, event: &mut NetworkActivity) -> Result<(), Reject> {
    // One pass: a line is set into the flow while its values are counted; a line with the
    // wrong number of values is refused for that before any value's own fault.
    let mut f = Flow::default();
    let mut fields = format.fields.iter();
    let mut found = 0;
    let mut fault = None;
    for value in format::values(line) {
        found += 1;
        match fields.next() {
            Some(field) if fault.is_none() => fault = f.set(field, value).err(),
            _ => {}
        }
    }
    if found != format.fields.len() {
        return Err(Reject::new(format!(
            "expected {} space-separated fields ({}), found {found}",
            format.fields.len(),
            format.describe(),
        )));
    }
    if let Some(fault) = fault {
        return Err(fault);
    }
    f.fill(event)
}

/// One flow record, field by field; `-` (not applicable) is absent.
#[derive(Default)]
struct Flow<'a> {
    version: Option<&'a str>,
    account: Option<&'a str>,
    interface: Option<&'a str>,
    srcaddr: Option<Cow<'a, str>>,
    dstaddr: Option<Cow<'a, str>>,
    pkt_srcaddr: Option<Cow<'a, str>>,
    pkt_dstaddr: Option<Cow<'a, str>>,
    srcport: Option<i32>,
    dstport: Option<i32>,
    protocol: Option<i32>,
    packets: Option<i64>,
    bytes: Option<i64>,
    start: Option<i64>,
    end: Option<i64>,
    action: Option<&'a str>,
    log_status: Option<&'a str>,
    vpc: Option<&'a str>,
    subnet: Option<&'a str>,
    instance: Option<&'a str>,
    tcp_flags: Option<i32>,
    ip_type: Option<&'a str>,
    region: Option<&'a str>,
    zone: Option<&'a str>,
    src_service: Option<&'a str>,
    dst_service: Option<&'a str>,
    direction: Option<&'a str>,
    traffic_path: Option<i32>,
    reject_reason: Option<&'a str>,
    unmapped: Unmapped,
}

fn number<T: std::str::FromStr>(field: &Field, value: &str) -> Result<T, Reject> {
    value
        .parse()
        .map_err(|_| Reject::at(field.name(), format!("`{value}` is not a number")))
}

/// The address in canonical form: an IPv4 address as it is (its only valid text is canonical),
/// an IPv6 address rewritten.
fn address<'a>(field: &Field, value: &'a str) -> Result<Cow<'a, str>, Reject> {
    if value.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(Cow::Borrowed(value));
    }
    ocsf::ip(value)
        .map(Cow::Owned)
        .ok_or_else(|| Reject::at(field.name(), format!("`{value}` is not an IP address")))
}

impl<'a> Flow<'a> {
    fn set(&mut self, field: &Field, value: &'a str) -> Result<(), Reject> {
        if value == "-" {
            return Ok(());
        }
        match field {
            Field::Version => self.version = Some(value),
            Field::AccountId => self.account = Some(value),
            Field::InterfaceId => self.interface = Some(value),
            Field::SrcAddr => self.srcaddr = Some(address(field, value)?),
            Field::DstAddr => self.dstaddr = Some(address(field, value)?),
            Field::PktSrcAddr => self.pkt_srcaddr = Some(address(field, value)?),
            Field::PktDstAddr => self.pkt_dstaddr = Some(address(field, value)?),
            Field::SrcPort => self.srcport = Some(port(field, value)?),
            Field::DstPort => self.dstport = Some(port(field, value)?),
            Field::Protocol => self.protocol = Some(number(field, value)?),
            Field::Packets => self.packets = Some(number(field, value)?),
            Field::Bytes => self.bytes = Some(number(field, value)?),
            Field::Start => self.start = Some(number(field, value)?),
            Field::End => self.end = Some(number(field, value)?),
            Field::Action => self.action = Some(value),
            Field::LogStatus => self.log_status = Some(value),
            Field::VpcId => self.vpc = Some(value),
            Field::SubnetId => self.subnet = Some(value),
            Field::InstanceId => self.instance = Some(value),
            Field::TcpFlags => self.tcp_flags = Some(number(field, value)?),
            Field::Type => self.ip_type = Some(value),
            Field::Region => self.region = Some(value),
            Field::AzId => self.zone = Some(value),
            Field::PktSrcAwsService => self.src_service = Some(value),
            Field::PktDstAwsService => self.dst_service = Some(value),
            Field::FlowDirection => self.direction = Some(value),
            Field::TrafficPath => self.traffic_path = Some(number(field, value)?),
            Field::RejectReason => self.reject_reason = Some(value),
            Field::Other(name) => self.unmapped.insert(name.replace('-', "_"), value),
        }
        Ok(())
    }

    /// Fills `event` (see [`translate_line`]): first everything that can fail, then every
    /// member a flow record may have, set or cleared.
    fn fill(self, event: &mut NetworkActivity) -> Result<(), Reject> {
        let start = self
            .start
            .ok_or_else(|| Reject::at("start", "missing: a flow record's time is its start"))?;
        let time = start
            .checked_mul(1000)
            .ok_or_else(|| Reject::at("start", "out of range"))?;
        let end_time = self.end.and_then(|e| e.checked_mul(1000));
        let (activity, disposition, action) = match self.action {
            Some("ACCEPT") => (
                NetworkActivityActivity::Traffic,
                Disposition::Allowed,
                Action::Allowed,
            ),
            Some("REJECT") => (
                NetworkActivityActivity::Refuse,
                Disposition::Blocked,
                Action::Denied,
            ),
            Some(other) => {
                return Err(Reject::at(
                    "action",
                    format!("`{other}` is neither ACCEPT nor REJECT"),
                ))
            }
            // NODATA and SKIPDATA records carry no traffic and no verdict.
            None => (
                NetworkActivityActivity::Unknown,
                Disposition::Unknown,
                Action::Unknown,
            ),
        };
        let (direction_id, inbound) = match self.direction {
            Some("ingress") => (ocsf::Direction::Inbound, true),
            Some("egress") => (ocsf::Direction::Outbound, false),
            Some(_) => (ocsf::Direction::Other, false),
            None => (ocsf::Direction::Unknown, false),
        };
        event.activity_id = activity;
        event.time = Some(time);
        event.time_dt = Some(Datetime(time));
        event.start_time = Some(time);
        event.start_time_dt = Some(Datetime(time));
        event.end_time = end_time;
        event.end_time_dt = end_time.map(Datetime);
        event.action_id = Some(action);
        event.disposition_id = Some(disposition);
        set_text(&mut event.status_code, self.log_status);
        set_text(&mut event.status_detail, self.reject_reason);

        // The flow log's interface, VPC, subnet and instance belong to the local side: the
        // destination of inbound traffic, the source otherwise (as Security Lake does).
        let local = Local {
            interface: self.interface,
            vpc: self.vpc,
            subnet: self.subnet,
            instance: self.instance,
        };
        let (src_local, dst_local) = if inbound {
            (Local::default(), local)
        } else {
            (local, Local::default())
        };
        let src = event.src_endpoint.get_or_insert_default();
        let dst = event.dst_endpoint.get_or_insert_default();
        fill_endpoint(
            src,
            self.srcport,
            self.src_service,
            self.pkt_srcaddr,
            self.srcaddr,
            src_local,
        );
        fill_endpoint(
            dst,
            self.dstport,
            self.dst_service,
            self.pkt_dstaddr,
            self.dstaddr,
            dst_local,
        );
        // A NODATA/SKIPDATA record knows only its interface: it stands for both ends.
        for end in [dst, src] {
            if is_blank(end) {
                set_text(&mut end.interface_uid, self.interface);
            }
        }

        let info = event.connection_info.get_or_insert_default();
        info.direction_id = direction_id;
        set_text(
            &mut info.direction,
            self.direction
                .filter(|_| direction_id == ocsf::Direction::Other),
        );
        info.protocol_num = self.protocol;
        info.tcp_flags = self.tcp_flags;
        set_text(&mut info.protocol_ver, self.ip_type);
        info.protocol_ver_id = match self.ip_type {
            Some("IPv4") => Some(ocsf::ProtocolVer::InternetProtocolVersion4IPv4),
            Some("IPv6") => Some(ocsf::ProtocolVer::InternetProtocolVersion6IPv6),
            _ => None,
        };
        // traffic-path 1..=8 lines up with boundary_id 4..=11 in OCSF 1.1.0.
        info.boundary_id = self
            .traffic_path
            .and_then(|p| (1..=8).contains(&p).then(|| p + 3))
            .and_then(ocsf::Boundary::from_id);

        let cloud = event.cloud.get_or_insert_default();
        set_text(&mut cloud.region, self.region);
        set_text(&mut cloud.zone, self.zone);
        match self.account {
            Some(uid) => set_text(&mut cloud.account.get_or_insert_default().uid, Some(uid)),
            None => cloud.account = None,
        }

        if self.packets.is_none() && self.bytes.is_none() {
            event.traffic = None;
        } else {
            let traffic = event.traffic.get_or_insert_default();
            traffic.packets = self.packets;
            traffic.bytes = self.bytes;
        }

        let mut unmapped = self.unmapped;
        if let Some(p) = self.traffic_path.filter(|p| !(1..=8).contains(p)) {
            unmapped.insert("traffic_path", p.to_string());
        }
        event.unmapped = Some(unmapped);
        if let Some(product) = event.metadata.as_mut().and_then(|m| m.product.as_mut()) {
            set_text(&mut product.version, self.version);
        }
        Ok(())
    }
}

/// The flow log's own resources, on the side of the flow they belong to.
#[derive(Default)]
struct Local<'a> {
    interface: Option<&'a str>,
    vpc: Option<&'a str>,
    subnet: Option<&'a str>,
    instance: Option<&'a str>,
}

/// Sets every member of an endpoint a flow record may have. The packet address is the
/// endpoint; a different interface address is an intermediate hop.
fn fill_endpoint(
    endpoint: &mut NetworkEndpoint,
    port: Option<i32>,
    service: Option<&str>,
    packet: Option<Cow<'_, str>>,
    interface: Option<Cow<'_, str>>,
    local: Local<'_>,
) {
    endpoint.port = port;
    set_text(&mut endpoint.svc_name, service);
    endpoint.intermediate_ips.clear();
    let ip = match (packet, interface) {
        (Some(p), Some(i)) if p != i => {
            endpoint.intermediate_ips.push(i.into_owned());
            Some(p)
        }
        (Some(p), _) => Some(p),
        (None, i) => i,
    };
    set_text(&mut endpoint.ip, ip.as_deref());
    set_text(&mut endpoint.interface_uid, local.interface);
    set_text(&mut endpoint.vpc_uid, local.vpc);
    set_text(&mut endpoint.subnet_uid, local.subnet);
    set_text(&mut endpoint.instance_uid, local.instance);
}

/// Whether an endpoint has none of the members [`fill_endpoint`] sets (it sets no others).
fn is_blank(endpoint: &NetworkEndpoint) -> bool {
    endpoint.port.is_none()
        && endpoint.svc_name.is_none()
        && endpoint.ip.is_none()
        && endpoint.intermediate_ips.is_empty()
        && endpoint.interface_uid.is_none()
        && endpoint.vpc_uid.is_none()
        && endpoint.subnet_uid.is_none()
        && endpoint.instance_uid.is_none()
}

fn port(field: &Field, value: &str) -> Result<i32, Reject> {
    let port: i32 = number(field, value)?;
    if (0..=65535).contains(&port) {
        Ok(port)
    } else {
        Err(Reject::at(
            field.name(),
            format!("{port} is not a port number"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use lakegate_plugin_sdk::host::harness;
    use lakegate_plugin_sdk::host::runner::{RunOptions, Runner};

    use super::VpcFlow;

    #[test]
    fn a_rejected_v2_flow_is_refused_traffic_with_a_denied_action() {
        let line = b"2 123456789010 eni-1 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK";
        let report = harness::run::<VpcFlow>(line).expect("runs");
        let e = &report.accepted[0].event();
        assert_eq!(
            (
                e["activity_id"].as_i64(),
                e["action_id"].as_i64(),
                e["disposition_id"].as_i64()
            ),
            (Some(5), Some(2), Some(2))
        );
        assert_eq!(e["time"], 1_418_530_010_000_i64);
        assert_eq!(e["connection_info"]["protocol_num"], 6);
        assert_eq!(e["dst_endpoint"]["port"], 3389);
        assert_eq!(e["src_endpoint"]["interface_uid"], "eni-1");
    }

    #[test]
    fn each_record_has_its_own_flow_log_version_though_metadata_is_reused() {
        let rest = "123456789010 eni-1 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 ACCEPT OK";
        let input = format!("2 {rest}\n7 {rest}\n7 {rest}\n- {rest}\n2 {rest}\n");
        let report = harness::run::<VpcFlow>(input.as_bytes()).expect("runs");
        let versions: Vec<_> = report
            .accepted
            .iter()
            .map(|a| a.event()["metadata"]["product"]["version"].clone())
            .collect();
        let v = |s: &str| serde_json::Value::from(s);
        assert_eq!(
            versions,
            [v("2"), v("7"), v("7"), serde_json::Value::Null, v("2")]
        );
        for a in &report.accepted {
            let metadata = &a.event()["metadata"];
            assert_eq!(metadata["product"]["feature"]["name"], "Flowlogs");
            assert_eq!(metadata["profiles"].as_array().map(Vec::len), Some(3));
        }
    }

    #[test]
    fn every_record_is_as_if_translated_alone_though_the_event_is_reused() {
        let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type pkt-src-aws-service flow-direction traffic-path reject-reason";
        let lines = [
            // Inbound through an intermediate address, everything set.
            "5 111122223333 eni-a 10.0.0.1 10.0.0.2 443 50000 6 10 900 1649721732 1649721788 ACCEPT OK vpc-1 subnet-1 i-1 2 IPv4 203.0.113.9 10.0.0.2 us-east-1 use1-az1 outpost S3 ingress 2 -",
            // Outbound, most fields absent, an IPv6 address, a path kept unmapped.
            "5 - eni-b 2001:DB8::1 10.0.0.3 - - 17 - - 1649721733 - REJECT OK - - - - IPv6 - - - - - - egress 9 BPA",
            // NODATA: only the interface, for both ends.
            "5 111122223333 eni-c - - - - - - - 1649721734 1649721794 - NODATA - - - - - - - - - - - - - -",
            // Refused: a bad address, then a direction of its own.
            "5 111122223333 eni-d 10.0.0.x 10.0.0.2 1 2 6 1 1 1649721735 1649721795 ACCEPT OK - - - - - - - - - - - - - -",
            "5 444455556666 eni-e 10.0.0.5 10.0.0.6 1 2 6 1 1 1649721736 1649721796 ACCEPT OK - - - - - - - eu-west-1 - - - sideways - -",
            // The first line again, after all the others.
            "5 111122223333 eni-a 10.0.0.1 10.0.0.2 443 50000 6 10 900 1649721732 1649721788 ACCEPT OK vpc-1 subnet-1 i-1 2 IPv4 203.0.113.9 10.0.0.2 us-east-1 use1-az1 outpost S3 ingress 2 -",
        ];
        let outcome = |report: &lakegate_plugin_sdk::host::runner::Report| {
            let events: Vec<_> = report.accepted.iter().map(|a| a.event()).collect();
            let reasons: Vec<_> = report.rejected.iter().map(|r| r.reason.clone()).collect();
            (events, reasons)
        };
        let together = format!("{header}\n{}\n", lines.join("\n"));
        let together = outcome(&harness::run::<VpcFlow>(together.as_bytes()).expect("runs"));
        // Alone: each in a thread of its own, where the plugin's reused event starts afresh.
        let mut alone = (Vec::new(), Vec::new());
        for line in lines {
            let input = format!("{header}\n{line}\n");
            let report = std::thread::spawn(move || harness::run::<VpcFlow>(input.as_bytes()))
                .join()
                .expect("runs")
                .expect("runs");
            let (events, reasons) = outcome(&report);
            alone.0.extend(events);
            alone.1.extend(reasons);
        }
        assert_eq!((together.0.len(), together.1.len()), (5, 1));
        assert_eq!(together, alone);
        // What each case is for is there.
        let e = &together.0;
        assert_eq!(e[0]["src_endpoint"]["intermediate_ips"][0], "10.0.0.1");
        assert_eq!(e[0]["dst_endpoint"]["vpc_uid"], "vpc-1");
        assert_eq!(e[1]["src_endpoint"]["ip"], "2001:db8::1");
        assert_eq!(e[1]["unmapped"]["traffic_path"], "9");
        assert_eq!(e[2]["src_endpoint"]["interface_uid"], "eni-c");
        assert_eq!(e[2]["dst_endpoint"]["interface_uid"], "eni-c");
        assert_eq!(e[3]["connection_info"]["direction"], "sideways");
    }

    #[test]
    fn a_rejected_line_keeps_the_header_it_was_read_with_as_context() {
        let header = "version srcaddr dstaddr srcport dstport protocol start end action log-status";
        let bad = "5 10.0.0.8 52.94.133.131 43x00 443 6 1566849000 1566849060 ACCEPT OK";
        let input = format!(
            "{header}\n5 10.0.0.9 52.94.133.131 43001 443 6 1566849000 1566849060 ACCEPT OK\n{bad}\n"
        );
        // The header in the same batch as the bad line, and in an earlier one.
        for batch_records in [1024, 1] {
            let options = RunOptions {
                batch_records,
                ..RunOptions::default()
            };
            let mut runner = Runner::new(harness::Native::<VpcFlow>::new()).expect("manifest");
            let report = runner.run(input.as_bytes(), &options).expect("runs");
            assert_eq!((report.accepted.len(), report.rejected.len()), (1, 1));
            let rejected = &report.rejected[0];
            assert!(
                rejected.reason.contains("`43x00` is not a number"),
                "{rejected:?}"
            );
            assert_eq!(rejected.context, [header.as_bytes()]);
            // Sent again after its context, the line is read with the same format.
            let mut replay = rejected.context.join(&b'\n');
            replay.push(b'\n');
            replay.extend_from_slice(&rejected.raw);
            let again = runner.run(&replay, &options).expect("runs");
            assert_eq!(again.consumed, 1);
            assert_eq!(again.rejected[0].reason, rejected.reason);
        }
        // Without a header the plugin holds no state, so a rejected line has no context.
        let report = harness::run::<VpcFlow>(b"2 123456789010 eni-1 bad").expect("runs");
        assert!(report.rejected[0].context.is_empty());
    }

    #[test]
    fn a_header_in_one_batch_sets_the_format_of_the_next() {
        let input = "version srcaddr dstaddr srcport dstport protocol start end action log-status flow-direction\n\
                     5 10.0.0.8 52.94.133.131 43000 443 6 1566849000 1566849060 ACCEPT OK ingress\n\
                     5 10.0.0.9 52.94.133.131 43001 443 6 1566849000 1566849060 ACCEPT OK egress\n";
        let mut runner = Runner::new(harness::Native::<VpcFlow>::new()).expect("manifest");
        let report = runner
            .run(
                input.as_bytes(),
                &RunOptions {
                    batch_records: 1,
                    ..RunOptions::default()
                },
            )
            .expect("runs");
        assert_eq!((report.accepted.len(), report.consumed), (2, 1));
        assert_eq!(
            report.accepted[0].event()["connection_info"]["direction_id"],
            1
        );
        assert_eq!(
            report.accepted[0].event()["dst_endpoint"]["ip"],
            "52.94.133.131"
        );
        assert_eq!(
            report.accepted[1].event()["connection_info"]["direction_id"],
            2
        );
    }
}
