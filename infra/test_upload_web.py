"""infra/upload_web.py against moto's in-process S3 and CloudFront: every exported file lands
with the Content-Type and Cache-Control its manifest gives it, the pages after their assets,
and the pages are invalidated.

  .venv/bin/python infra/test_upload_web.py     (infra/check-template.sh runs it)
"""

import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True

os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_DEFAULT_REGION="eu-central-1", AWS_CONFIG_FILE="/dev/null",
                  AWS_SHARED_CREDENTIALS_FILE="/dev/null")
os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process moto, never a server

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import upload_web  # noqa: E402

FILES = [
    ("integrator/proftest/index.html", "text/html; charset=utf-8", "no-cache", "<!doctype html>pt"),
    ("expresscourse/index.html", "text/html; charset=utf-8", "no-cache", "<!doctype html>ec"),
    ("assets/app.0123abcd.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable", "b{}"),
    ("assets/lead-client.89ef4567.js", "text/javascript; charset=utf-8",
     "public, max-age=31536000, immutable", "export {}"),
]


def export_dir(root: Path) -> Path:
    for path, _, _, body in FILES:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body)
    manifest = {"contentSecurityPolicy": "default-src 'none'",
                "files": [{"path": p, "contentType": ct, "cacheControl": cc} for p, ct, cc, _ in FILES]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class UploadWebTest(unittest.TestCase):
    @mock_aws
    def test_every_file_lands_with_its_headers_pages_last_and_the_pages_are_invalidated(self):
        s3 = boto3.client("s3", region_name="eu-central-1")
        s3.create_bucket(Bucket="pages", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        with tempfile.TemporaryDirectory() as d:
            keys = upload_web.upload(s3, "pages", export_dir(Path(d)))
        self.assertEqual(sorted(keys), sorted(p for p, _, _, _ in FILES))
        first_page = min(i for i, k in enumerate(keys) if k.endswith(".html"))
        self.assertTrue(all(not k.endswith(".html") for k in keys[:first_page]))
        self.assertTrue(all(k.endswith(".html") for k in keys[first_page:]), keys)
        for path, ct, cc, body in FILES:
            obj = s3.get_object(Bucket="pages", Key=path)
            self.assertEqual((obj["ContentType"], obj["CacheControl"]), (ct, cc), path)
            self.assertEqual(obj["Body"].read().decode(), body)

        cf = boto3.client("cloudfront", region_name="us-east-1")
        dist = cf.create_distribution(DistributionConfig={
            "CallerReference": "t", "Comment": "", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "pages.s3.amazonaws.com",
                                                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                     "MinTTL": 0, "ForwardedValues": {"QueryString": False,
                                                                      "Cookies": {"Forward": "none"}}}})
        dist_id = dist["Distribution"]["Id"]
        inv = upload_web.invalidate(cf, dist_id)
        got = cf.get_invalidation(DistributionId=dist_id, Id=inv)["Invalidation"]
        self.assertEqual(sorted(got["InvalidationBatch"]["Paths"]["Items"]), sorted(upload_web.PAGE_PATHS))


if __name__ == "__main__":
    unittest.main()
