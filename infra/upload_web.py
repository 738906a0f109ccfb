"""Puts the landing pages on AWS: `landing-local web export` writes them (pages, hashed assets
and manifest.json with each file's Content-Type and Cache-Control), this uploads them to the
stack's pages bucket and invalidates the pages in CloudFront.

  .venv/bin/python infra/upload_web.py --stack landing-prod [--region eu-central-1] [--dir DIR]
  .venv/bin/python infra/upload_web.py --bucket NAME [--distribution ID] --dir DIR

Without --dir it runs `cargo run --release -p landing-local -- web export` first (set
LANDING_WEB_CONTENT to upload edited texts). With --stack the bucket and distribution come from
the stack's outputs (PagesBucketName, PagesDistributionId). AWS's default credentials.

Old assets are never deleted: a page a browser or CloudFront still holds may refer to them by
their hashed names, and they are a few kilobytes each.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
# The HTML objects: cached by CloudFront until invalidated (browsers revalidate, no-cache).
PAGE_PATHS = ["/integrator/*", "/expresscourse/*"]


def stack_outputs(stack: str, region: str | None) -> dict:
    cfn = boto3.client("cloudformation", region_name=region)
    outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def export(dest: Path) -> None:
    subprocess.run(["cargo", "run", "--release", "--locked", "-q", "-p", "landing-local", "--",
                    "web", "export", "--out", str(dest)], cwd=ROOT, check=True)


def upload(s3, bucket: str, src: Path) -> list[str]:
    """Every file of the export with the headers its manifest gives it; HTML last, so that no
    page goes live before the assets it names. Returns the keys, in upload order."""
    manifest = json.loads((src / "manifest.json").read_text())
    files = sorted(manifest["files"], key=lambda f: f["path"].endswith(".html"))
    keys = []
    for f in files:
        s3.put_object(Bucket=bucket, Key=f["path"], Body=(src / f["path"]).read_bytes(),
                      ContentType=f["contentType"], CacheControl=f["cacheControl"])
        keys.append(f["path"])
    return keys


def invalidate(cloudfront, distribution: str) -> str:
    answer = cloudfront.create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={"Paths": {"Quantity": len(PAGE_PATHS), "Items": PAGE_PATHS},
                           "CallerReference": f"upload-web-{time.time_ns()}"})
    return answer["Invalidation"]["Id"]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack")
    ap.add_argument("--region")
    ap.add_argument("--bucket")
    ap.add_argument("--distribution")
    ap.add_argument("--dir", type=Path, help="an existing `landing-local web export` directory")
    a = ap.parse_args(argv)
    bucket, distribution = a.bucket, a.distribution
    if a.stack:
        out = stack_outputs(a.stack, a.region)
        bucket = bucket or out.get("PagesBucketName")
        distribution = distribution or out.get("PagesDistributionId")
    if not bucket:
        ap.error("name the bucket: --stack (its PagesBucketName output) or --bucket")
    with tempfile.TemporaryDirectory() as tmp:
        src = a.dir
        if src is None:
            src = Path(tmp)
            export(src)
        keys = upload(boto3.client("s3", region_name=a.region), bucket, src)
        print(f"{len(keys)} files uploaded to s3://{bucket}")
        if distribution:
            inv = invalidate(boto3.client("cloudfront", region_name=a.region), distribution)
            print(f"CloudFront invalidation {inv} of {' '.join(PAGE_PATHS)} on {distribution}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
