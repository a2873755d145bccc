"""Independent OCSF check: validates JSON-lines OCSF records against the JSON Schemas that the
PyPI package `ocsf-json-schema` generates from the published OCSF 1.1.0 schema, with the standard
`jsonschema` validator. Shares no code or schema copy with lakegate's own validator.

usage: python ocsf_jsonschema_check.py RECORDS.jsonl [RECORDS.jsonl ...]
Prints `N passed, M failed` and exits 1 when any record fails.
"""

import json
import sys

import jsonschema
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

OCSF_VERSION = "1.1.0"


def main(paths):
    generator = OcsfJsonSchemaEmbedded(get_ocsf_schema(OCSF_VERSION))
    validators = {}
    passed = failed = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                class_name = generator.lookup_class_name_from_uid(record["class_uid"])
                profiles = tuple(sorted(record.get("metadata", {}).get("profiles", [])))
                key = (class_name, profiles)
                if key not in validators:
                    schema = generator.get_class_schema(class_name, list(profiles))
                    validators[key] = jsonschema.Draft202012Validator(schema)
                errors = list(validators[key].iter_errors(record))
                if errors:
                    failed += 1
                    for e in errors[:3]:
                        where = "/".join(str(p) for p in e.absolute_path) or "<record>"
                        print(f"{path}:{number}: {class_name}: {where}: {e.message[:200]}")
                else:
                    passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
