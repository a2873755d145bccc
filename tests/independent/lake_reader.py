#!/usr/bin/env python3
"""Reads a lakegate lake with pyarrow (no lakegate code) and prints one JSON document that the
gateway's end-to-end tests assert on: every data file with its partition values, row count,
classes, sort order, compression, the physical/logical types of the OCSF columns that Security
Lake cares about, and any bare repeated field.

Usage: lake_reader.py LAKE_DIR
"""
import json
import os
import re
import sys

import pyarrow.parquet as pq

LAYOUT = re.compile(
    r"^ext/(?P<source>[^/]+)/region=(?P<region>[^/]+)/accountId=(?P<account>[^/]+)/"
    r"eventDay=(?P<day>\d{8})/(?P<name>[^/]+\.parquet)$"
)


def bare_repeated(schema_text):
    """Repeated fields whose parent group is not LIST- or MAP-annotated."""
    bad = []
    lines = schema_text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("repeated"):
            parent = lines[i - 1].strip() if i > 0 else ""
            if "(List)" not in parent and "(Map)" not in parent:
                bad.append(line.strip())
    return bad


def column_types(pf):
    out = {}
    schema = pf.schema
    for i in range(len(schema)):
        col = schema.column(i)
        out[col.path] = {
            "physical": col.physical_type,
            "logical": str(col.logical_type),
        }
    return out


def main():
    lake = sys.argv[1]
    files = []
    others = []
    for root, _dirs, names in os.walk(os.path.join(lake, "ext")):
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, lake)
            m = LAYOUT.match(rel)
            if not m:
                others.append(rel)
                continue
            pf = pq.ParquetFile(path)
            table = pf.read()
            times = table.column("time").to_pylist()
            classes = sorted(set(table.column("class_uid").to_pylist()))
            day_ms = [int(t) // 86_400_000 for t in times]
            codecs = set()
            for rg in range(pf.metadata.num_row_groups):
                group = pf.metadata.row_group(rg)
                for c in range(group.num_columns):
                    codecs.add(group.column(c).compression)
            import datetime
            day = datetime.datetime.strptime(m["day"], "%Y%m%d").replace(
                tzinfo=datetime.timezone.utc)
            day_number = int(day.timestamp()) // 86_400
            files.append({
                "path": rel,
                "source": m["source"],
                "region": m["region"],
                "account": m["account"],
                "day": m["day"],
                "rows": table.num_rows,
                "classes": classes,
                "sorted": times == sorted(times),
                "in_day": all(d == day_number for d in day_ms),
                "codecs": sorted(codecs),
                "row_groups": pf.metadata.num_row_groups,
                "max_row_group_bytes": max(
                    (pf.metadata.row_group(i).total_byte_size for i in range(pf.metadata.num_row_groups)),
                    default=0),
                "types": column_types(pf),
                "arrow_schema": str(pf.schema_arrow),
                "unmapped": str(pf.schema_arrow.field("unmapped").type) if "unmapped" in pf.schema_arrow.names else None,
                "bare_repeated": bare_repeated(str(pf.schema)),
            })
    print(json.dumps({"files": files, "other_files": others,
                      "rows": sum(f["rows"] for f in files)}))


if __name__ == "__main__":
    main()
