#!/usr/bin/env python3
"""Expand a SAM template into plain CloudFormation JSON, offline.

cfn-lint 1.x no longer runs the SAM transform: on AWS::Serverless::* resources it lets a wrong
Runtime, Architectures, event property or GetAtt target pass. Linting the expanded template
catches them. No AWS credentials or network are needed: local CodeUri values are replaced by a
placeholder S3 location and managed-policy names resolve to nothing (this template uses none).

Usage: sam2cfn.py TEMPLATE.yaml OUT.json   (region from AWS_DEFAULT_REGION, default eu-central-1)
Exit status: 0 on success, 1 when the SAM translator rejects the template, 2 on usage errors.
"""

import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

PLACEHOLDER_BUCKET = "placeholder-bucket"
# Properties holding a local path that `sam package` would upload, per resource type.
LOCAL_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class OfflinePolicyLoader:
    """Stands in for the managed-policy loader, which would call IAM ListPolicies."""

    def load(self):
        return {}


def replace_local_code(template):
    """Points every local code path at a placeholder S3 object (SAM needs a bucket + key)."""
    for name, resource in (template.get("Resources") or {}).items():
        prop = LOCAL_CODE_PROPERTIES.get(resource.get("Type"))
        props = resource.get("Properties") or {}
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            props[prop] = f"s3://{PLACEHOLDER_BUCKET}/{name}.zip"


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    source, target = argv[1], argv[2]
    with open(source, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    replace_local_code(template)
    try:
        expanded = transform(template, {}, OfflinePolicyLoader())
    except InvalidDocumentException as err:
        for cause in err.causes:
            print(f"{source}: SAM transform: {cause.message}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(expanded, f, indent=2, sort_keys=False)
        f.write("\n")
    print(f"{source} -> {target} ({len(expanded.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
