"""What the infra scripts need to know about template.yaml, read from the template itself so that
a sixth function (or another architecture) needs no script edit:

  .venv/bin/python infra/template_info.py functions     # LogicalId, package, binary, CodeUri (tabs)
  .venv/bin/python infra/template_info.py packages      # the cargo package of each function
  .venv/bin/python infra/template_info.py logical-ids   # e.g. CrmSyncFunction
  .venv/bin/python infra/template_info.py architecture  # the Architecture parameter's default
  .venv/bin/python infra/template_info.py memory        # binary and MemorySize in MB (tabs)
  .venv/bin/python infra/template_info.py alarms        # how many AWS::CloudWatch::Alarm
  (--template PATH before the command reads another template)

The functions are the AWS::Serverless::Function resources that `sam build` builds with cargo
lambda (Metadata.BuildMethod: rust-cargolambda, BuildProperties.Binary); the cargo package of
one is `landing-<folder of its CodeUri>`. The template is read with SAM CLI's own YAML loader,
which knows the CloudFormation tags (!Ref, !GetAtt…) — hence the venv's Python. Exits 1, saying
why, if the template does not describe its functions that way; check_template.py reports the
same problems as template check failures.
"""

import argparse
import sys
import tomllib
from pathlib import Path
from typing import NamedTuple

from samcli.yamlhelper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
BUILD_METHOD = "rust-cargolambda"


class Function(NamedTuple):
    logical_id: str
    package: str
    binary: str
    code_uri: str


def load(template: Path) -> dict:
    return yaml_parse(template.read_text())


def _serverless_functions(sam: dict) -> dict:
    return {
        lid: r
        for lid, r in sam.get("Resources", {}).items()
        if r.get("Type") == "AWS::Serverless::Function"
    }


def functions(sam: dict) -> list[Function]:
    """The cargo-lambda functions, in template order; malformed ones are left out (see problems)."""
    out = []
    for lid, r in _serverless_functions(sam).items():
        meta = r.get("Metadata", {})
        binary = meta.get("BuildProperties", {}).get("Binary")
        code_uri = r.get("Properties", {}).get("CodeUri")
        if meta.get("BuildMethod") != BUILD_METHOD or not isinstance(binary, str) or not isinstance(code_uri, str):
            continue
        out.append(Function(lid, f"landing-{Path(code_uri).name}", binary, code_uri))
    return out


def _cargo_bins(manifest: dict) -> set[str]:
    bins = {b.get("name") for b in manifest.get("bin", [])}
    # Without [[bin]] sections cargo builds src/main.rs as a binary named after the package.
    return bins or {manifest.get("package", {}).get("name")}


def problems(sam: dict, root: Path = ROOT) -> list[str]:
    """Why the scripts could not build or check every function from this template."""
    out = []
    fns = _serverless_functions(sam)
    if not fns:
        out.append("template: no AWS::Serverless::Function resources")
    for lid, r in fns.items():
        meta = r.get("Metadata", {})
        # Only cargo-lambda functions are pre-built (check.sh) and checked for a bootstrap
        # (sam-build.sh); a function built any other way would silently skip both.
        if meta.get("BuildMethod") != BUILD_METHOD:
            out.append(f"{lid}: BuildMethod {BUILD_METHOD}")
        binary = meta.get("BuildProperties", {}).get("Binary")
        if not isinstance(binary, str) or not binary:
            out.append(f"{lid}: Metadata.BuildProperties.Binary must name the cargo binary")
        code_uri = r.get("Properties", {}).get("CodeUri")
        if not isinstance(code_uri, str) or not code_uri:
            out.append(f"{lid}: CodeUri must be the function's crate folder")
            continue
        manifest_path = root / code_uri / "Cargo.toml"
        if not manifest_path.is_file():
            out.append(f"{lid}: CodeUri {code_uri} has no Cargo.toml")
            continue
        manifest = tomllib.loads(manifest_path.read_text())
        package = f"landing-{Path(code_uri).name}"
        if manifest.get("package", {}).get("name") != package:
            out.append(f"{lid}: {code_uri}/Cargo.toml must be package {package}")
        if isinstance(binary, str) and binary not in _cargo_bins(manifest):
            out.append(f"{lid}: Binary {binary} is not a [[bin]] of {code_uri}/Cargo.toml")
    return out


def architecture(sam: dict) -> str | None:
    default = sam.get("Parameters", {}).get("Architecture", {}).get("Default")
    return default if isinstance(default, str) else None


def memory(sam: dict, lid: str) -> int:
    """A function's MemorySize: its own, else the Globals', else Lambda's default."""
    own = sam["Resources"][lid].get("Properties", {}).get("MemorySize")
    glob = sam.get("Globals", {}).get("Function", {}).get("MemorySize")
    return int(own or glob or 128)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    ap.add_argument("what", choices=["functions", "packages", "logical-ids", "architecture", "memory", "alarms"])
    args = ap.parse_args(argv)
    sam = load(args.template)
    if args.what == "architecture":
        arch = architecture(sam)
        if arch is None:
            print(f"{args.template}: no Architecture parameter default", file=sys.stderr)
            return 1
        print(arch)
        return 0
    if args.what == "alarms":
        print(sum(r.get("Type") == "AWS::CloudWatch::Alarm" for r in sam.get("Resources", {}).values()))
        return 0
    errors = problems(sam, args.template.resolve().parent)
    if errors:
        for e in errors:
            print(f"{args.template}: {e}", file=sys.stderr)
        return 1
    for f in functions(sam):
        print({
            "functions": "\t".join(f),
            "packages": f.package,
            "logical-ids": f.logical_id,
            "memory": f"{f.binary}\t{memory(sam, f.logical_id)}",
        }[args.what])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
