#!/usr/bin/env python3
"""Deploys infra/template.yaml to ministack with CloudFormation and runs the
end-to-end scenario through the emulated API Gateway.

Run by infra/scripts/emulator-test.sh (which builds the functions and the venv);
docs/deploy.md lists what is adapted for the emulator and why. Every step
prints what it did; any failed expectation ends the run with exit code 1.

The world outside the stack is real HTTP: `shop sim` (the Toss-compatible PG
simulator and the data-platform sink) and an OIDC issuer serving a JWKS, whose
RS256 tokens the emulated JWT authorizer verifies.
"""

from __future__ import annotations

import argparse
import base64
import copy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import io
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path

import boto3
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STACK = "shop-e2e"
BUCKET = "shop-e2e-artifacts"
AUDIENCE = "shop-e2e"
# The PG simulator's secret key for this run: in SSM for the stack, given to `shop sim`.
PG_SECRET_KEY = f"test_sk_{secrets.token_hex(16)}"
# Resource types ministack 1.5.33 cannot create; they go to moto instead.
NOT_ON_MINISTACK = {"AWS::Events::Archive"}
# Stand-in for one SQS visibility timeout while a consumer fails (the
# template's 180 s would take 15 minutes to reach the DLQ after 5 receives).
TEST_VISIBILITY_SECS = "1"


# ── output ───────────────────────────────────────────────────────────────────

T0 = time.monotonic()


def package_of(logical_id: str) -> str:
    """A function's package (and binary) from its logical id, as infra/Makefile
    derives it for `sam build`: CreateOrderFunction -> create-order."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", logical_id.removesuffix("Function")).lower()


def functions_of(template: dict) -> dict:
    """The template's functions by logical id."""
    return {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failed(Exception):
    pass


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise Failed(what)
    log(f"  ok: {what}")


def wait_for(what: str, probe, deadline_secs: float = 120.0, every: float = 0.5):
    """Polls `probe` until it returns something truthy, or fails at the deadline."""
    end = time.monotonic() + deadline_secs
    last = error = None
    while time.monotonic() < end:
        try:
            last = probe()
        except Exception as e:  # noqa: BLE001 - a refused or odd answer: ask again
            last = None
            error = repr(e)
            time.sleep(every)
            continue
        if last:
            log(f"  ok: {what}")
            return last
        time.sleep(every)
    raise Failed(f"timed out after {deadline_secs:.0f}s waiting for: {what} (last: {last!r}, last error: {error})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, what: str, deadline_secs: float = 60.0) -> None:
    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(f"{what} listening on {port}", up, deadline_secs, 0.2)


# ── HTTP ─────────────────────────────────────────────────────────────────────


def http(method: str, url: str, body=None, headers=None, timeout=30.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, parsed


# ── the identity provider ────────────────────────────────────────────────────


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def int_b64(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    """An OIDC issuer: discovery document, JWKS, RS256 tokens."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.key.public_key().public_numbers()
        jwks = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "e2e", "n": int_b64(pub.n), "e": int_b64(pub.e)}]}
        docs = {
            "/.well-known/openid-configuration": {"issuer": self.url, "jwks_uri": f"{self.url}/.well-known/jwks.json"},
            "/.well-known/jwks.json": jwks,
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                doc = docs.get(self.path)
                body = json.dumps(doc).encode() if doc else b"{}"
                self.send_response(200 if doc else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, sub: str, audience: str = AUDIENCE, role: str | None = None) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": "e2e"}
        claims = {"iss": self.url, "aud": audience, "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 3600}
        if role:
            # What an identity provider adds for operators (Cognito: a pre-token-generation trigger).
            claims["role"] = role
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(sig)}"


# ── the template ─────────────────────────────────────────────────────────────


class CfnLoader(yaml.SafeLoader):
    pass


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template() -> dict:
    return yaml.load((ROOT / "infra/template.yaml").read_text(), Loader=CfnLoader)


def for_ministack(template: dict) -> tuple[dict, dict, list[str]]:
    """The template as deployed to ministack, the part that goes to moto, and
    the list of adaptations (printed, and documented in docs/deploy.md)."""
    t = copy.deepcopy(template)
    res = t["Resources"]
    notes = []

    # 1. Code: `sam build` would upload each function's zip; here we did.
    functions = functions_of(t)
    for n, r in functions.items():
        binary = package_of(n)
        r["Properties"]["CodeUri"] = f"s3://{BUCKET}/{binary}.zip"
    notes.append(f"CodeUri of {len(functions)} functions -> s3://{BUCKET}/<binary>.zip (what `sam build`+`sam deploy` upload)")

    # 2. Resource types ministack rejects: deployed to moto.
    moved = {n: r for n, r in res.items() if r["Type"] in NOT_ON_MINISTACK}
    for n in moved:
        del res[n]
    moto = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": copy.deepcopy(moved)}
    for n, r in moved.items():
        # their dependencies, as in the real template
        for dep in sorted(refs(r)):
            if dep in template["Resources"] and dep not in moto["Resources"]:
                moto["Resources"][dep] = copy.deepcopy(template["Resources"][dep])
        notes.append(f"{n} ({r['Type']}) -> moto (ministack cannot create it); the same archive is created through the EventBridge API")
        pattern = moto["Resources"][n]["Properties"].get("EventPattern")
        if isinstance(pattern, dict):
            # moto 5.2.1 json.loads() this property; CloudFormation takes the object too.
            moto["Resources"][n]["Properties"]["EventPattern"] = json.dumps(pattern)
            notes.append(f"{n}.EventPattern passed to moto as a JSON string (moto only parses that form)")

    # Outputs naming what moved: `shop --stack` finds the archive through
    # the EventBridge API when the stack has no ArchiveArn output.
    for name, out in list(t.get("Outputs", {}).items()):
        if refs(out) & set(moved):
            del t["Outputs"][name]
            notes.append(f"output {name} dropped (it names {sorted(refs(out) & set(moved))}, on moto)")

    # 3. IAM is enforced (AUTH=true), but ministack does not supply the
    #    `events:source` condition key of PutEvents, nor KMS's
    #    `kms:EncryptionContext:purpose`, so a statement conditioned on them
    #    would deny every call. The conditions are dropped; the actions and
    #    resources stay enforced (tests/drift.rs checks the conditions).
    dropped = {"events:source": 0, "kms:EncryptionContext:purpose": 0}
    for r in functions.values():
        for policy in r["Properties"].get("Policies", []):
            for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
                cond = st.get("Condition", {}).get("StringEquals", {})
                for key in dropped:
                    if key in cond:
                        del cond[key]
                        dropped[key] += 1
                if "Condition" in st and not cond:
                    st["Condition"].pop("StringEquals", None)
                    if not st["Condition"]:
                        del st["Condition"]
    notes.append(f"events:source condition dropped from {dropped['events:source']} PutEvents statement(s), "
                 f"kms:EncryptionContext:purpose from {dropped['kms:EncryptionContext:purpose']} KMS statement(s) "
                 "(ministack cannot evaluate them)")

    # 4. ministack ignores the OpenAPI body SAM generates for an HttpApi, so
    #    the routes, integrations and the JWT authorizer the SAM events
    #    describe are declared as the ApiGatewayV2 resources AWS itself creates.
    apis = [n for n, r in res.items() if r["Type"] == "AWS::Serverless::HttpApi"]
    for api in apis:
        auth = res[api]["Properties"]["Auth"]
        default = auth["DefaultAuthorizer"]
        jwt = auth["Authorizers"][default]
        res["EmuAuthorizer"] = {
            "Type": "AWS::ApiGatewayV2::Authorizer",
            "Properties": {
                "ApiId": {"Ref": api},
                "Name": default,
                "AuthorizerType": "JWT",
                "IdentitySource": [jwt["IdentitySource"]],
                "JwtConfiguration": {"Issuer": jwt["JwtConfiguration"]["issuer"], "Audience": jwt["JwtConfiguration"]["audience"]},
            },
        }
        routes = 0
        for fname, f in functions.items():
            for ename, ev in f["Properties"].get("Events", {}).items():
                if ev["Type"] != "HttpApi" or ev["Properties"].get("ApiId") != {"Ref": api}:
                    continue
                p = ev["Properties"]
                integ = f"Emu{fname}{ename}Integration"
                res[integ] = {
                    "Type": "AWS::ApiGatewayV2::Integration",
                    "Properties": {
                        "ApiId": {"Ref": api},
                        "IntegrationType": "AWS_PROXY",
                        "IntegrationUri": {"Fn::GetAtt": [fname, "Arn"]},
                        "PayloadFormatVersion": "2.0",
                    },
                }
                open_route = p.get("Auth", {}).get("Authorizer") == "NONE"
                route = {
                    "ApiId": {"Ref": api},
                    "RouteKey": f"{p['Method'].upper()} {p['Path']}",
                    "Target": {"Fn::Sub": f"integrations/${{{integ}}}"},
                    "AuthorizationType": "NONE" if open_route else "JWT",
                }
                if not open_route:
                    route["AuthorizerId"] = {"Ref": "EmuAuthorizer"}
                res[f"Emu{fname}{ename}Route"] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": route}
                routes += 1
        notes.append(f"{api}: {routes} routes + JWT authorizer declared as AWS::ApiGatewayV2 resources (ministack ignores the SAM-generated OpenAPI body)")
    return t, moto, notes


def refs(node) -> set[str]:
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            else:
                out |= refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= refs(v)
    return out


# ── processes ────────────────────────────────────────────────────────────────


class Procs:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, argv: list[str], env: dict) -> Path:
        logfile = self.workdir / f"{name}.log"
        with open(logfile, "wb") as f:
            p = subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
        self.procs.append((name, p, logfile))
        return logfile

    def check_alive(self):
        for name, p, logfile in self.procs:
            if p.poll() is not None:
                raise Failed(f"{name} exited with {p.returncode}; see {logfile}")

    def stop(self):
        for _, p, _ in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 15)
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, 9)
                except ProcessLookupError:
                    pass


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ── the run ──────────────────────────────────────────────────────────────────


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True, help="directory with the function binaries and `shop`")
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    bin_dir = Path(args.bin_dir).resolve()
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)

    ms_port, moto_port, pg_port, sink_port, idp_port = (free_port() for _ in range(5))
    endpoint = f"http://127.0.0.1:{ms_port}"
    aws_env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # Functions inherit ministack's environment: nothing of ours may leak in
    # (the PG key in particular must come from SSM, as in AWS).
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG_", "SHOP_", "TABLE_NAME", "EVENT_BUS", "DATA_PLATFORM", "RUST_"))}
    procs = Procs(work)
    try:
        return run(bin_dir, work, procs, base_env, aws_env, ms_port, moto_port, pg_port, sink_port, idp_port, endpoint)
    except Exception as e:  # noqa: BLE001 - report, show the logs, fail
        log(f"FAILED: {e if isinstance(e, Failed) else repr(e)}")
        if not isinstance(e, Failed):
            import traceback
            traceback.print_exc()
        for name, _, logfile in procs.procs:
            print(f"\n----- last lines of {name} ({logfile}) -----\n{tail(logfile)}", flush=True)
        dump_function_logs(endpoint)
        return 1
    finally:
        procs.stop()
        # ministack unpacks every function's code here and leaves it behind.
        shutil.rmtree(Path(tempfile.gettempdir()) / f"ministack-provided-code-{ms_port}", ignore_errors=True)


def run(bin_dir, work, procs, base_env, aws_env, ms_port, moto_port, pg_port, sink_port, idp_port, endpoint) -> int:
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]

    # ministack: functions inherit its environment, so AWS_ENDPOINT_URL there
    # is what points their SDK clients back at it.
    log(f"starting ministack on {endpoint}, moto on {moto_port}")
    procs.start(
        "ministack",
        [sys.executable, "-m", "ministack"],
        {
            **base_env,
            **aws_env,
            "GATEWAY_PORT": str(ms_port),
            "BIND_HOST": "127.0.0.1",
            "AWS_ENDPOINT_URL": endpoint,
            "LOG_LEVEL": os.environ.get("SHOP_MINISTACK_LOG_LEVEL", "WARNING"),
            "IOT_MTLS_ENABLED": "0",
            "SFTP_ENABLED": "0",
            "LAMBDA_EXECUTOR": "local",
            # IAM enforced: each function runs with its own role's session
            # credentials, so a role missing an action fails the scenario.
            "AUTH": "true",
        },
    )
    procs.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], {**base_env, **aws_env})
    issuer = Issuer(idp_port)
    wait_for("ministack healthy", lambda: http("GET", f"{endpoint}/_ministack/health", timeout=2)[0] == 200 if port_open(ms_port) else False, 60)
    health = http("GET", f"{endpoint}/_ministack/health", timeout=5)[1]
    expect(isinstance(health, dict) and health.get("auth") == "enabled", f"ministack enforces IAM (health: auth={health.get('auth') if isinstance(health, dict) else health})")
    wait_port(moto_port, "moto")
    procs.check_alive()

    def client(service, url=endpoint):
        return boto3.client(service, endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")

    cfn, s3, ssm, sqs, events, ddb, lam, apigw, logs, scheduler = (
        client(s) for s in ("cloudformation", "s3", "ssm", "sqs", "events", "dynamodb", "lambda", "apigatewayv2", "logs", "scheduler")
    )

    def invocations(function: str) -> int:
        """START lines in the function's log group: one per invocation."""
        group = f"/aws/lambda/{STACK}-{function}"
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        return sum(1 for p in pages for e in p.get("events", []) if e["message"].startswith("START"))

    # ── artifacts and parameters ──
    template = load_template()
    deployed, moto_part, notes = for_ministack(template)
    log("emulator adaptations of infra/template.yaml:")
    for n in notes:
        log(f"  - {n}")
    s3.create_bucket(Bucket=BUCKET)
    total = 0
    functions = functions_of(template)
    for n in functions:
        binary = package_of(n)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, (bin_dir / binary).read_bytes())
        total += buf.tell()
        s3.put_object(Bucket=BUCKET, Key=f"{binary}.zip", Body=buf.getvalue())
    log(f"uploaded {len(functions)} function zips ({total / 1e6:.1f} MB) to s3://{BUCKET}")
    ssm.put_parameter(Name="/shop/pg-secret-key", Type="SecureString", Value=PG_SECRET_KEY, Overwrite=True)
    ssm.put_parameter(Name="/shop/data-platform-url", Type="String", Value=f"http://127.0.0.1:{sink_port}", Overwrite=True)
    # The waiting room's admission tokens (create-order and my-ticket read it at cold start).
    ssm.put_parameter(Name="/shop/admission-secret", Type="SecureString", Value="emulator-admission-secret", Overwrite=True)
    log("SSM: /shop/pg-secret-key, /shop/admission-secret (SecureString), /shop/data-platform-url (String)")

    # ── deploy ──
    params = {
        "Architecture": arch,
        "JwtIssuer": issuer.url,
        "JwtAudience": AUDIENCE,
        "PgBaseUrl": f"http://127.0.0.1:{pg_port}",
        "ReconcileAfterSecs": "60",
        "MetricsNamespace": METRICS_NAMESPACE,
    }
    log(f"create-stack {STACK} with {params}")
    t_deploy = time.monotonic()
    # A TemplateBody is capped at 51,200 bytes; like `sam deploy`, upload the
    # template to S3 and pass its URL (up to 1 MB).
    body = json.dumps(deployed).encode()
    s3.put_object(Bucket=BUCKET, Key="template.json", Body=body)
    log(f"template ({len(body)} bytes) -> s3://{BUCKET}/template.json, created from its TemplateURL")
    cfn.create_stack(
        StackName=STACK,
        TemplateURL=f"{endpoint}/{BUCKET}/template.json",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )

    stack = wait_for("stack settled", lambda: settled(cfn), 300, 1)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        for e in cfn.describe_stack_events(StackName=STACK)["StackEvents"][:30]:
            log(f"  {e['LogicalResourceId']} {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}")
        raise Failed(f"stack is {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    log(f"stack CREATE_COMPLETE in {time.monotonic() - t_deploy:.1f}s")
    resources = [r for page in cfn.get_paginator("list_stack_resources").paginate(StackName=STACK)
                 for r in page["StackResourceSummaries"]]
    log(f"{len(resources)} resources created:")
    for r in sorted(resources, key=lambda r: (r["ResourceType"], r["LogicalResourceId"])):
        log(f"  {r['ResourceStatus']:<16} {r['ResourceType']:<38} {r['LogicalResourceId']:<40} {r.get('PhysicalResourceId', '')}")
    bad = [r for r in resources if r["ResourceStatus"] != "CREATE_COMPLETE"]
    expect(not bad, "every resource CREATE_COMPLETE")
    phys = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    by_type: dict[str, int] = {}
    for r in resources:
        by_type[r["ResourceType"]] = by_type.get(r["ResourceType"], 0) + 1
    evs = [e["Type"] for f in functions.values() for e in f["Properties"].get("Events", {}).values()]
    want = {
        "AWS::Lambda::Function": len(functions),
        "AWS::Lambda::EventSourceMapping": sum(t in ("SQS", "DynamoDB") for t in evs),
        "AWS::Scheduler::Schedule": evs.count("ScheduleV2"),
        "AWS::SQS::Queue": sum(r["Type"] == "AWS::SQS::Queue" for r in template["Resources"].values()),
        "AWS::CloudWatch::Alarm": sum(r["Type"] == "AWS::CloudWatch::Alarm" for r in template["Resources"].values()),
        # The HTTP API's routes (SAM events) and the WebSocket API's (declared).
        "AWS::ApiGatewayV2::Route": evs.count("HttpApi")
        + sum(r["Type"] == "AWS::ApiGatewayV2::Route" for r in template["Resources"].values()),
    }
    for ty, n in want.items():
        expect(by_type.get(ty) == n, f"{n} x {ty}, as the template declares")

    # the part ministack cannot host, on moto, as written in the template
    moto_cfn = client("cloudformation", f"http://127.0.0.1:{moto_port}")
    moto_cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(moto_part))
    ms = wait_for("moto stack settled", lambda: settled(moto_cfn), 60)
    expect(ms["StackStatus"] == "CREATE_COMPLETE", f"moto stack with {sorted(moto_part['Resources'])} CREATE_COMPLETE")
    moto_events = client("events", f"http://127.0.0.1:{moto_port}")
    archives = moto_events.list_archives()["Archives"]
    expect(len(archives) == 1 and archives[0]["State"] == "ENABLED", f"moto: archive {archives[0]['ArchiveName'] if archives else '-'} ENABLED")
    arch_tpl = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Archive")["Properties"]
    desc = moto_events.describe_archive(ArchiveName=archives[0]["ArchiveName"])
    expect(json.loads(desc["EventPattern"]) == arch_tpl["EventPattern"] and desc["RetentionDays"] == arch_tpl["RetentionDays"],
           "moto: archive pattern and retention as in the template")

    # post-deploy settings ministack's CloudFormation drops (see docs/deploy.md)
    table = phys["Table"]
    ttl = next(r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")["Properties"]["TimeToLiveSpecification"]
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
    bus_name = phys["EventBus"]
    bus_arn = events.describe_event_bus(Name=bus_name)["Arn"]
    events.create_archive(ArchiveName=f"{STACK}-archive", EventSourceArn=bus_arn,
                          EventPattern=json.dumps(arch_tpl["EventPattern"]), RetentionDays=arch_tpl["RetentionDays"])
    log(f"table {table}: TTL on `{ttl['AttributeName']}`; archive {STACK}-archive on {bus_name} (from the template's properties)")

    queue_url = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::SQS::Queue"}
    consumer_queues = [n for n in queue_url if n.endswith("Queue") and n != "PublisherFailureQueue"]

    def consumer_queues_empty() -> bool:
        return all(depth(sqs, queue_url[q], in_flight=True) == 0 for q in consumer_queues)

    def published_lines() -> list:
        """The event ids of the stream publisher's "published" lines, one per publication."""
        out = []
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{STACK}-stream-publisher"):
            for e in page.get("events", []):
                for raw in e["message"].splitlines():
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(line, dict) and line.get("message") == "published" and line.get("event_id"):
                        out.append(line["event_id"])
        return out

    def outbox_published() -> bool:
        """Every outbox event in the table went out through the stream
        publisher. AWS keeps no pending index: the table's stream delivers
        each write and nothing clears anything (docs/adr/0024)."""
        written, start = set(), None
        while True:
            page = ddb.scan(TableName=table, FilterExpression="#t = :e", ProjectionExpression="eventId",
                            ExpressionAttributeNames={"#t": "type"}, ExpressionAttributeValues={":e": {"S": "EVENT"}},
                            **({"ExclusiveStartKey": start} if start else {}))
            written.update(i["eventId"]["S"] for i in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return bool(written) and written <= set(published_lines())

    api_id = phys["HttpApi"]
    api = f"{endpoint}/_aws/execute-api/{api_id}"
    log(f"API {api_id}: {len(apigw.get_routes(ApiId=api_id)['Items'])} routes")

    # ── the outside world: PG simulator + data platform, identity provider ──
    procs.start(
        "shop-sim",
        [str(bin_dir / "shop"), "sim", "--pg-port", str(pg_port), "--sink-port", str(sink_port),
         "--webhook-url", f"{api}/webhooks/pg", "--webhook-backoff-ms", "500", "--secret-key", PG_SECRET_KEY],
        {**base_env, "RUST_LOG": "info"},
    )
    wait_port(pg_port, "PG simulator")
    wait_port(sink_port, "data-platform sink")
    pg = f"http://127.0.0.1:{pg_port}"
    sink = f"http://127.0.0.1:{sink_port}"
    shop_env = {**base_env, **aws_env, "AWS_ENDPOINT_URL": endpoint, "RUST_LOG": "warn"}
    out = subprocess.run([str(bin_dir / "shop"), "seed", "--table", table, "--file", str(ROOT / "infra/local/catalog.json")],
                         env=shop_env, capture_output=True, text=True, timeout=120)
    log(f"shop seed --table {table}: {out.stdout.strip()} {out.stderr.strip()[-500:]}")
    expect(out.returncode == 0, "catalog seeded into the deployed table")

    def shop(*args):
        """`shop <args> --json` against the deployed stack; its JSON answer."""
        out = subprocess.run([str(bin_dir / "shop"), *args, "--json"], env=shop_env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise Failed(f"shop {' '.join(args)} failed: {out.stderr.strip()[-800:]}")
        log(f"  shop {' '.join(args)}: {out.stdout.strip()[:600]}")
        return json.loads(out.stdout)

    def call(method, path, user=None, body=None, headers=None, token=None):
        h = dict(headers or {})
        if user or token:
            h["authorization"] = f"Bearer {token or issuer.token(user)}"
        return http(method, f"{api}{path}", body, h)

    # ── the scenario ──
    log("scenario 1: the JWT authorizer")
    expect(call("GET", "/coupons")[0] == 401, "no token -> 401")
    expect(call("GET", "/coupons", token=issuer.token("u1", audience="someone-else"))[0] == 401, "wrong audience -> 401")
    status, body = call("GET", "/coupons", "u1")
    expect(status == 200, f"valid RS256 token -> 200 ({body})")
    status, body = call("GET", "/me/points", "u1")
    expect(status == 200 and body.get("balance") == sum(r["delta"] for r in body.get("ledger", [])),
           f"GET /me/points -> 200, balance = the ledger's sum ({body})")

    log("scenario 2: order -> card payment -> webhook -> coupon USED -> analytics delivered")
    status, order = call("POST", "/orders", "u1", {"items": [{"productId": "p1", "quantity": 2}], "couponId": "c1"},
                         {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201, f"POST /orders -> 201 ({order})")
    order_a, amount_a = order["orderId"], order["amountDue"]
    expect(amount_a == 2 * 12000 - 3000, f"amount due {amount_a} = 2 x 12000 - coupon 3000")
    key_a = checkout(pg, order_a, amount_a)
    status, paid = call("POST", "/payments/confirm", "u1", {"orderId": order_a, "paymentKey": key_a, "amount": amount_a})
    expect(status == 200, f"POST /payments/confirm -> 200 ({paid})")
    wait_for("the PG's webhook for order A answered 200 by the deployed pg-webhook",
             lambda: any(w.get("orderId") == order_a and w.get("status") == 200 for w in webhooks(pg, order_a)), 60)
    wait_for("order A PAID", lambda: call("GET", f"/orders/{order_a}", "u1")[1].get("status") == "PAID", 60)
    wait_for("coupon c1 USED (stream -> publisher -> EventBridge -> SQS -> coupon consumer)",
             lambda: coupon_status(call("GET", "/coupons", "u1")[1], "c1") == "USED", 120)
    wait_for("analytics delivered OrderPaid of order A to the data platform",
             lambda: "OrderPaid" in delivered(sink, order_a), 120)

    log("scenario 2a: the public catalog, my orders, a campaign's claim, an operator's new campaign")
    status, catalog = call("GET", "/products?limit=2")
    expect(status == 200 and len(catalog.get("products", [])) == 2 and catalog.get("nextCursor"),
           f"GET /products without a token -> 200, a page and a cursor ({catalog})")
    status, p1 = call("GET", "/products/p1")
    expect(status == 200 and p1.get("available") == 100 - 2, f"GET /products/p1 shows the stock order A holds ({p1})")
    status, mine = call("GET", "/orders?limit=5", "u1")
    expect(status == 200 and any(o.get("orderId") == order_a for o in mine.get("orders", [])),
           f"GET /orders lists order A ({status})")
    claim_key = {"idempotency-key": f"e2e-{uuid.uuid4()}"}
    status, coupon = call("POST", "/campaigns/welcome/claim", "u2", None, claim_key)
    expect(status == 201 and coupon.get("status") == "ISSUED", f"POST /campaigns/welcome/claim -> 201 ({coupon})")
    expect(call("POST", "/campaigns/welcome/claim", "u2", None, claim_key) == (201, coupon), "a replayed claim -> the same coupon")
    status, campaign = call("GET", "/campaigns/welcome")
    expect(status == 200 and campaign.get("remaining") == campaign.get("total", 0) - 1, f"GET /campaigns/welcome ({campaign})")
    # The operator route: the role claim reaches the function through the authorizer.
    spec = {"campaignId": "e2e-rush", "name": "E2E rush", "total": 1, "endsAt": "2099-01-01T00:00:00Z",
            "coupon": {"kind": "FIXED", "value": 1000, "expiresAt": "2099-02-01T00:00:00Z"}}
    status, refused = call("POST", "/campaigns", "u2", spec)
    expect(status == 403 and refused.get("type", "").endswith("/not-operator"), f"POST /campaigns as a shopper -> 403 ({refused})")
    operator = issuer.token("ops", role="operator")
    status, created = call("POST", "/campaigns", body=spec, token=operator)
    expect(status == 201 and created.get("remaining") == 1, f"POST /campaigns as an operator -> 201 ({created})")
    expect(call("POST", "/campaigns", body=spec, token=operator) == (200, created), "the same campaign again -> 200, unchanged")
    status, coupon = call("POST", "/campaigns/e2e-rush/claim", "u2", None, {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201 and coupon.get("status") == "ISSUED", f"the new campaign's coupon claimed -> 201 ({coupon})")

    log("scenario 2b: virtual account -> deposit -> the PG's webhook settles the order")
    status, order = call("POST", "/orders", "u2", {"items": [{"productId": "p1", "quantity": 1}]},
                         {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201, "order V placed")
    order_v, amount_v = order["orderId"], order["amountDue"]
    status, co = http("POST", f"{pg}/v1/sim/checkout", {"orderId": order_v, "amount": amount_v, "method": "VIRTUAL_ACCOUNT"})
    expect(status == 200 and isinstance(co, dict) and "paymentKey" in co, "virtual-account checkout")
    status, body = call("POST", "/payments/confirm", "u2", {"orderId": order_v, "paymentKey": co["paymentKey"], "amount": amount_v})
    expect(status == 200 and body.get("status") == "AWAITING_DEPOSIT", f"confirm -> AWAITING_DEPOSIT ({status} {body.get('status')})")
    expect(http("POST", f"{pg}/v1/sim/deposit", {"paymentKey": co["paymentKey"]})[0] == 200, "the customer deposits")
    wait_for("order V PAID by the DEPOSIT_CALLBACK webhook alone",
             lambda: call("GET", f"/orders/{order_v}", "u2")[1].get("status") == "PAID", 60)

    log("scenario 2c: paying with points; the saga timeline route")
    status, order = call("POST", "/orders", "u1", {"items": [{"productId": "p3", "quantity": 1}]},
                         {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201, "order P placed")
    order_p = order["orderId"]
    status, body = call("POST", "/payments/points", "u1", {"orderId": order_p})
    expect(status == 200 and body.get("status") == "PAID", f"POST /payments/points -> {status} {body.get('status')}")
    wait_for("GET /orders/{id}/timeline shows order P's OrderPaid and the analytics outcome",
             lambda: timeline_has(call("GET", f"/orders/{order_p}/timeline", "u1")[1], "OrderPaid", "analytics"), 60)
    expect(call("GET", f"/orders/{order_p}", "u2")[0] == 404, "another user's order -> 404")

    log("scenario 3: a consumer failure lands in its DLQ; redrive delivers it")
    aq, adlq = queue_url["AnalyticsQueue"], queue_url["AnalyticsQueueDlq"]
    visibility = sqs.get_queue_attributes(QueueUrl=aq, AttributeNames=["VisibilityTimeout"])["Attributes"]["VisibilityTimeout"]
    sqs.set_queue_attributes(QueueUrl=aq, Attributes={"VisibilityTimeout": TEST_VISIBILITY_SECS})
    log(f"  AnalyticsQueue VisibilityTimeout {visibility} -> {TEST_VISIBILITY_SECS}s for the test (5 receives before the DLQ)")
    expect(http("POST", f"{sink}/sim/faults", {"fault": "error", "count": -1})[0] < 300, "data platform set to refuse everything")
    status, order = call("POST", "/orders", "u2", {"items": [{"productId": "p3", "quantity": 1}]},
                         {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201, f"order B placed ({order.get('orderId')})")
    order_b, amount_b = order["orderId"], order["amountDue"]
    status, _ = call("POST", "/payments/confirm", "u2", {"orderId": order_b, "paymentKey": checkout(pg, order_b, amount_b), "amount": amount_b})
    expect(status == 200, "order B paid")
    wait_for("order B's analytics message in AnalyticsQueueDlq after 5 failed receives",
             lambda: depth(sqs, adlq) >= 1, 180)
    expect("OrderPaid" not in delivered(sink, order_b), "order B's OrderPaid refused by the data platform so far")
    listed = shop("dlq", "list", "analytics", "--stack", STACK)
    expect(any(e.get("orderId") == order_b and e.get("detailType") == "OrderPaid" and e.get("receives", 0) >= 1 for e in listed),
           f"shop dlq list analytics --stack {STACK}: order B's OrderPaid, with its receive count")
    expect(depth(sqs, adlq) >= 1, "the listing peeked: the message is still in the DLQ")
    console, token = start_console(procs, bin_dir, shop_env, work, "console-ro", allow_actions=False)
    page = lambda path, tok=token: http("GET", f"{console}{path}", headers={"authorization": f"Bearer {tok}"} if tok else {})
    status, html = page("/console/queues")
    expect(status == 200 and f"/console/orders/{order_b}" in html and "read-only" in html,
           f"shop console --stack {STACK}: the queues page peeks order B's OrderPaid in the analytics DLQ (SQS)")
    expect(depth(sqs, adlq) >= 1, "the console peeked: the message is still in the DLQ")
    status, html = page(f"/console/orders/{order_b}")
    expect(status == 200 and "OrderPaid" in html and "analytics" in html, "the console shows order B's saga from the table")
    status, html = page("/console/overview/charts?range=1h")
    expect(status == 200 and 'id="status-PAID"' in html, "the console's overview reads the stack's saga statistics")
    expect(page("/console/queues", tok=None)[0] == 401, "the console refuses a request without a token")
    status, _ = form_post(f"{console}/console/queues/analytics/redrive", {}, token)
    expect(status == 403, "the read-only console refuses to redrive")
    expect(http("DELETE", f"{sink}/sim/faults")[0] < 300, "data platform recovered")
    moved = shop("dlq", "redrive", "analytics", "--stack", STACK, "--reason", "the data platform is back")
    expect(moved.get("moved", 0) >= 1 and moved.get("status") == "COMPLETED",
           f"shop dlq redrive analytics --stack {STACK} moved {moved.get('moved')} message(s) by {moved.get('method')}")
    wait_for("after the redrive, order B's OrderPaid delivered", lambda: "OrderPaid" in delivered(sink, order_b), 120)
    wait_for("AnalyticsQueue drained (nothing went back to the DLQ)", lambda: depth(sqs, aq, in_flight=True) == 0, 30)
    expect(depth(sqs, adlq) == 0, "AnalyticsQueueDlq empty")
    console, token = start_console(procs, bin_dir, shop_env, work, "console-act", allow_actions=True)
    before = invocations("analytics")
    status, _ = form_post(f"{console}/console/orders/{order_b}/replay", {"version": "3", "consumer": "analytics"}, token)
    expect(status == 400, "a replay without a reason is refused")
    status, _ = form_post(f"{console}/console/orders/{order_b}/replay",
                          {"version": "3", "consumer": "analytics", "reason": "checking the dedupe"}, token)
    expect(status in (200, 303), f"shop console --stack --allow-actions: order B's OrderPaid replayed to analytics alone ({status})")
    audit = shop("audit", "--stack", STACK)["entries"]
    expect(len(audit) >= 2 and audit[0]["action"] == "order.replay" and audit[0]["channel"] == "console"
           and audit[0]["reason"] == "checking the dedupe" and audit[0]["stack"] == STACK
           and f"order:{order_b}" in audit[0]["targets"] and audit[0]["status"] == "SUCCEEDED",
           f"shop audit --stack {STACK}: the console's replay, its operator, reason and order ({audit[:1]})")
    expect(audit[1]["action"] == "dlq.redrive" and audit[1]["channel"] == "cli" and audit[1]["operator"].startswith("arn:")
           and audit[1]["reason"] == "the data platform is back",
           f"the redrive under the caller identity STS named ({audit[1]['operator'] if len(audit) > 1 else '-'})")
    wait_for("the replayed OrderPaid handled by the analytics function", lambda: invocations("analytics") > before, 60)
    wait_for("AnalyticsQueue drained after the replay", lambda: depth(sqs, aq, in_flight=True) == 0, 30)
    expect(depth(sqs, adlq) == 0, "the replay was deduped, not failed: AnalyticsQueueDlq still empty")
    sqs.set_queue_attributes(QueueUrl=aq, Attributes={"VisibilityTimeout": visibility})
    log(f"  AnalyticsQueue VisibilityTimeout back to {visibility}s")

    log("scenario 3b: cancelling a paid order -> compensation refunds at the PG (PG secret read from SSM)")
    status, order = call("POST", "/orders", "u2", {"items": [{"productId": "p3", "quantity": 1}]},
                         {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201, "order C placed")
    order_c, amount_c = order["orderId"], order["amountDue"]
    key_c = checkout(pg, order_c, amount_c)
    status, _ = call("POST", "/payments/confirm", "u2", {"orderId": order_c, "paymentKey": key_c, "amount": amount_c})
    expect(status == 200, "order C paid")
    status, body = call("POST", f"/orders/{order_c}/cancel", "u2", {})
    expect(status in (200, 202), f"POST /orders/{{id}}/cancel -> {status} {body}")
    wait_for("order C REFUNDED (RefundRequested -> EventBridge -> SQS -> compensation -> PG cancel)",
             lambda: call("GET", f"/orders/{order_c}", "u2")[1].get("status") == "REFUNDED", 120)
    wait_for("the PG simulator holds order C's payment as CANCELED",
             lambda: any(p.get("paymentKey") == key_c and p.get("status") == "CANCELED" for p in sim_payments(pg, key_c)), 30)
    wait_for("analytics delivered OrderRefunded of order C", lambda: "OrderRefunded" in delivered(sink, order_c), 120)

    log("scenario 3b': a deposit refunded by bank transfer: the refund account sealed under the stack's KMS key, opened by compensation")
    key_v = co["paymentKey"]
    status, body = call("POST", f"/orders/{order_v}/cancel", "u2", {})
    expect(status == 422 and body.get("type", "").endswith("/refund-account-required"),
           f"cancelling a paid virtual account without a refund account -> 422 refund-account-required ({status})")
    account = {"bank": "88", "accountNumber": "11012345677270", "holderName": "e2e holder"}
    status, body = call("POST", f"/orders/{order_v}/cancel", "u2", {"refundAccount": account})
    expect(status == 200 and body.get("status") == "REFUND_PENDING",
           f"the cancel with a refund account -> REFUND_PENDING, the account sealed by cancel-order (KMS GenerateDataKey) ({status} {body.get('status')})")
    wait_for("order V REFUNDED (compensation opened the account: KMS Decrypt)",
             lambda: call("GET", f"/orders/{order_v}", "u2")[1].get("status") == "REFUNDED", 120)
    paid_back = [c for p in sim_payments(pg, key_v) for c in (p.get("cancels") or [])]
    expect(any((c.get("refundReceiveAccount") or {}).get("accountNumber") == "110*******7270" for c in paid_back),
           f"the PG got the account as refundReceiveAccount ({[c.get('refundReceiveAccount') for c in paid_back]})")
    kept = ddb.query(TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
                     ExpressionAttributeValues={":pk": {"S": f"ORDER#{order_v}"}, ":sk": {"S": "REFUNDACCOUNT#"}})["Items"]
    expect(kept == [], "the sealed account deleted once the PG answered")
    everything = json.dumps(ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": f"ORDER#{order_v}"}})["Items"])
    expect("11012345677270" not in everything and "e2e holder" not in everything,
           "no item of order V holds the account in clear (events carry refundAccount: true)")

    log("scenario 3c: a payment in doubt, asked about from a laptop through the deployed reconcile-payments function")
    status, order = call("POST", "/orders", "u2", {"items": [{"productId": "p3", "quantity": 1}]},
                         {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201, "order D placed")
    order_d, amount_d = order["orderId"], order["amountDue"]
    key_d = checkout(pg, order_d, amount_d)
    armed = http("POST", f"{pg}/v1/sim/faults", {"op": "confirm", "fault": "lost_response", "count": 1})
    expect(armed[0] < 300, f"the PG loses its next confirm answer ({armed[0]})")
    # Its webhook too: nothing but the ask may settle the payment.
    armed = http("POST", f"{pg}/v1/sim/faults", {"op": "webhook", "fault": "error", "count": -1})
    expect(armed[0] < 300, f"the PG's webhooks fail ({armed[0]})")
    status, body = call("POST", "/payments/confirm", "u2", {"orderId": order_d, "paymentKey": key_d, "amount": amount_d})
    expect(status == 202 and body.get("status") == "CONFIRMING", f"the confirm whose answer was lost -> {status} {body}")
    status, body = call("GET", f"/orders/{order_d}", "u2")
    expect(body.get("status") == "CONFIRMING", f"order D CONFIRMING: the PG's answer lost ({body.get('status')})")
    dry = shop("bulk", "ask-pg", "--stack", STACK, "--filter", "stuck=in-doubt", "--dry-run")
    expect(any(t.startswith(f"order:{order_d}/") for t in dry["targets"]), f"the dry run finds order D in doubt ({dry})")
    asked = shop("bulk", "ask-pg", "--stack", STACK, "--filter", "stuck=in-doubt", "--reason", "the PG answered late")
    mine = [r for r in asked["results"] if r["orderId"] == order_d]
    expect(len(mine) == 1 and mine[0]["ok"] and "PAID" in mine[0]["detail"],
           f"shop bulk ask-pg --stack: the deployed function asked the PG and settled order D ({mine})")
    status, body = call("GET", f"/orders/{order_d}", "u2")
    expect(body.get("status") == "PAID", f"order D PAID ({body.get('status')})")
    audit = shop("audit", "--stack", STACK)["entries"]
    expect(audit[0]["action"] == "bulk.ask-pg" and audit[0]["reason"] == "the PG answered late"
           and any(t.startswith(f"order:{order_d}/") for t in audit[0]["targets"]) and audit[0]["status"] == "SUCCEEDED",
           f"the ask in the audit trail ({audit[:1]})")
    expect(http("DELETE", f"{pg}/v1/sim/faults")[0] < 300, "the PG's faults cleared")

    log("scenario 4: an archive replay changes nothing (consumers dedupe by event id)")
    before = len(deliveries(sink))
    consumed_before = {c: invocations(c) for c in ("coupon", "analytics")}
    replay = shop("replay", "--stack", STACK, "--from", "-1h", "--reason", "replay identity check")
    expect(replay.get("state") == "COMPLETED" and replay.get("archiveArn", "").endswith(f"{STACK}-archive"),
           f"shop replay --stack {STACK}: {replay.get('replayName')} from the stack's archive COMPLETED")
    wait_for("every consumer queue drained after the replay",
             consumer_queues_empty, 120)
    consumed_after = {c: invocations(c) for c in ("coupon", "analytics")}
    expect(all(consumed_after[c] > consumed_before[c] for c in consumed_after),
           f"the replayed events reached the consumers again (invocations {consumed_before} -> {consumed_after})")
    accepted_after = [d for d in deliveries(sink) if d.get("status") == 200 and not d.get("duplicate")]
    expect(len(deliveries(sink)) == before, f"no new data-platform deliveries from the replay ({before} before and after)")
    expect(len({d['eventId'] for d in accepted_after}) == len(accepted_after), "every event accepted by the data platform once")

    log("scenario 4b: shop republish --table: the outbox published again, consumers dedupe")
    before = len(deliveries(sink))
    consumed_before = invocations("analytics")
    published_before = len(published_lines())
    republished = shop("republish", "--stack", STACK, "--since", "-1h", "--reason", "republish identity check").get("republished", 0)
    expect(republished > 0, f"shop republish --stack marked {republished} outbox event(s) pending")
    wait_for(f"the stream publisher published the {republished} again",
             lambda: len(published_lines()) >= published_before + republished, 60)
    wait_for("the republished events reached the analytics consumer", lambda: invocations("analytics") > consumed_before, 60)
    wait_for("every consumer queue drained after the republish",
             consumer_queues_empty, 120)
    expect(len(deliveries(sink)) == before, f"no new data-platform deliveries from the republish ({before} before and after)")

    log("scenario 4c: the publisher gives up on a window; shop republish --from-failure-queue --stack publishes it")
    fq = queue_url["PublisherFailureQueue"]
    publisher = f"{STACK}-stream-publisher"
    env = lam.get_function_configuration(FunctionName=publisher)["Environment"]["Variables"]
    mapping = lam.list_event_source_mappings(FunctionName=publisher)["EventSourceMappings"][0]
    # The publisher fails its cold start (no bus configured) and the mapping
    # gives a batch up after 5 s instead of a day, to its OnFailure queue.
    lam.update_event_source_mapping(UUID=mapping["UUID"], MaximumRecordAgeInSeconds=5)
    lam.update_function_configuration(FunctionName=publisher,
                                      Environment={"Variables": {k: v for k, v in env.items() if k != "EVENT_BUS_NAME"}})
    status, order = call("POST", "/orders", "u2", {"items": [{"productId": "p3", "quantity": 1}]},
                         {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 201, "order E placed while the publisher is broken")
    order_e, amount_e = order["orderId"], order["amountDue"]
    status, _ = call("POST", "/payments/confirm", "u2", {"orderId": order_e, "paymentKey": checkout(pg, order_e, amount_e), "amount": amount_e})
    expect(status == 200, "order E paid (the API only writes the table)")
    wait_for("the publisher's OnFailure record of order E's window in PublisherFailureQueue", lambda: depth(sqs, fq) >= 1, 120)
    lam.update_function_configuration(FunctionName=publisher, Environment={"Variables": env})
    lam.update_event_source_mapping(UUID=mapping["UUID"], MaximumRecordAgeInSeconds=mapping.get("MaximumRecordAgeInSeconds", 86400))
    record = json.loads(sqs.receive_message(QueueUrl=fq, VisibilityTimeout=0, WaitTimeSeconds=1)["Messages"][0]["Body"])
    window = record["DDBStreamBatchInfo"]
    log(f"  the failure record: {record['requestContext']['condition']}, shard {window['shardId']}, "
        f"sequence {window['startSequenceNumber']}..{window['endSequenceNumber']} ({window['batchSize']} record(s))")
    rp = shop("republish", "--from-failure-queue", "--stack", STACK, "--reason", "the publisher's failures")
    expect(rp.get("windowsFromStream", 0) >= 1 and rp.get("republished", 0) >= 1 and rp.get("deleted") == rp.get("records"),
           f"the failure record's shard window read back from the stream: {rp.get('streamRecords')} record(s), "
           f"{rp.get('republished')} outbox event(s) republished, {rp.get('deleted')} record(s) deleted")
    # Republishing writes a stream record for each event even though its
    # item already carries the pending attributes, as every event does on AWS
    # (an update that changes nothing writes none; `republishes` changes).
    streams = client("dynamodbstreams")
    it = streams.get_shard_iterator(StreamArn=window["streamArn"], ShardId=window["shardId"],
                                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                    SequenceNumber=window["endSequenceNumber"])["ShardIterator"]
    later = streams.get_records(ShardIterator=it, Limit=1000)["Records"]
    modified = [r for r in later if r["eventName"] == "MODIFY"
                and r["dynamodb"].get("NewImage", {}).get("pk", {}).get("S") == f"ORDER#{order_e}"
                and "outboxShard" in r["dynamodb"]["NewImage"]]
    expect(len(modified) == rp.get("republished"), f"the stream holds {len(modified)} MODIFY record(s) of order E's republished events")
    wait_for("order E's OrderPaid delivered by analytics after the republish", lambda: "OrderPaid" in delivered(sink, order_e), 120)
    wait_for("order E's outbox published (every event in the table in a publisher line)", outbox_published, 60)
    expect(depth(sqs, fq) == 0, "PublisherFailureQueue empty")

    log("scenario 5: the schedules and their functions")
    for fn in ("expire-orders", "reconcile-payments", "admit-sales"):
        sched = next(r for r in resources if r["ResourceType"] == "AWS::Scheduler::Schedule" and r["LogicalResourceId"].startswith(
            "".join(w.capitalize() for w in fn.split("-"))))
        got = scheduler.get_schedule(Name=sched["PhysicalResourceId"])
        fixture = json.loads((ROOT / f"events/schedule-{fn}.json").read_text())
        out = lam.invoke(FunctionName=f"{STACK}-{fn}", Payload=json.dumps(fixture).encode())
        payload = out["Payload"].read().decode()
        expect(got["ScheduleExpression"] == "rate(1 minute)" and "FunctionError" not in out,
               f"{fn}: schedule {got['ScheduleExpression']} {got['State']}; invoked with events/schedule-{fn}.json -> {payload}")

    log("scenario 6: a small flash sale (the catalog's `launch`) through the deployed API")
    status, sale = call("GET", "/sales/launch")
    expect(status == 200 and sale.get("state") == "OPEN", f"GET /sales/launch -> 200 OPEN ({sale})")
    status, refused = call("POST", "/orders", "u2", {"items": [{"productId": "drop1", "quantity": 1}]},
                           {"idempotency-key": f"e2e-{uuid.uuid4()}"})
    expect(status == 403 and refused.get("saleId") == "launch", f"a gated product without an admission -> 403 ({refused})")
    status, ticket = call("POST", "/sales/launch/queue", "u2")
    expect(status == 201 and ticket.get("status") == "WAITING", f"POST /sales/launch/queue -> 201 WAITING ({ticket})")
    fixture = json.loads((ROOT / "events/schedule-admit-sales.json").read_text())
    out = lam.invoke(FunctionName=f"{STACK}-admit-sales", Payload=json.dumps(fixture).encode())
    report = out["Payload"].read().decode()
    expect("FunctionError" not in out and json.loads(report).get("admitted") == 1, f"admit-sales admitted the one waiting ({report})")
    status, me = call("GET", "/sales/launch/queue/me", "u2")
    expect(status == 200 and me.get("status") == "ADMITTED" and me.get("admission", {}).get("token"),
           f"GET /sales/launch/queue/me -> ADMITTED with a token ({ {k: v for k, v in me.items() if k != 'admission'} })")
    status, order_s = call("POST", "/orders", "u2", {"items": [{"productId": "drop1", "quantity": 1}]},
                           {"idempotency-key": f"e2e-{uuid.uuid4()}", "admission": me["admission"]["token"]})
    expect(status == 201 and order_s.get("saleId") == "launch", f"the admitted order -> 201 in sale launch ({order_s})")

    log("final states")
    for oid, user in ((order_a, "u1"), (order_v, "u2"), (order_p, "u1"), (order_b, "u2"), (order_c, "u2")):
        _, o = call("GET", f"/orders/{oid}", user)
        log(f"  order {oid}: {json.dumps({k: v for k, v in (o or {}).items() if k not in ('items', 'createdAt', 'expiresAt')})}")
    log(f"  coupons of u1: {[(c.get('couponId'), c.get('status')) for c in (call('GET', '/coupons', 'u1')[1] or {}).get('coupons', [])]}")
    for oid in (order_a, order_b, order_c):
        log(f"  data platform, order {oid}: {sorted(delivered(sink, oid))}")
    for name, url in sorted(queue_url.items()):
        log(f"  {name:<28} visible={depth(sqs, url)} in-flight={depth(sqs, url, in_flight=True) - depth(sqs, url)}")
    tl = subprocess.run([str(bin_dir / "shop"), "timeline", order_a, "--table", table], env=shop_env, capture_output=True, text=True, timeout=60)
    log(f"  shop timeline {order_a} --table {table}:\n{tl.stdout}{tl.stderr[-300:]}")
    expect(tl.returncode == 0 and "analytics" in tl.stdout and "coupon" in tl.stdout and "trace=1-" in tl.stdout,
           "the saga timeline read from the deployed table, each event with its trace id")
    expect(depth(sqs, queue_url["PublisherFailureQueue"]) == 0, "no outbox record given up by the publisher")
    wait_for("every outbox event published (each event in the table in a publisher line)",
             outbox_published, 30)
    check_log_lines(logs, order_a)
    check_one_trace(logs, ddb, table, pg, order_a)
    cw = client("cloudwatch")
    board = json.loads(cw.get_dashboard(DashboardName=f"{STACK}-saga")["DashboardBody"])
    text = json.dumps(board)
    binaries = [package_of(n) for n in functions]
    unresolved = [n for n in binaries if f"{STACK}-{n}" not in text]
    expect(len(board.get("widgets", [])) >= 6 and not unresolved and METRICS_NAMESPACE in text,
           f"dashboard {STACK}-saga: {len(board.get('widgets', []))} widgets naming every function and the namespace ({unresolved})")
    procs.check_alive()
    log("PASSED")
    return 0


# The stack's metrics namespace (a template parameter; two stacks in one
# account keep theirs apart).
METRICS_NAMESPACE = "shop-e2e-metrics"
# EMF metrics the scenario must have produced, each flushed by the function
# that records it.
EXPECTED_METRICS = {"ColdStart", "RequestLatency", "PgLatency", "OutboxAge", "OrdersPlaced", "OrdersPaid"}

# What every application log line carries (shop_app::obs::telemetry::KEYS).
LOG_KEYS = ("timestamp", "level", "service", "cold_start", "function_request_id", "xray_trace_id",
            "correlation_id", "order_id", "message")
# Lambda's own lines in the Text format (the emulator writes these).
PLATFORM_PREFIXES = ("START ", "END ", "REPORT ", "INIT_START", "INIT_REPORT", "EXTENSION", "TELEMETRY")


def check_log_lines(logs, order_a: str) -> None:
    """Every application line of every function is one JSON object with the
    Powertools keys; the lines of order A's invocations name it."""
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}-")["logGroups"]]
    app_lines, not_json, missing, services, order_lines = 0, [], [], {}, 0
    emf_namespaces, emf_metrics, emf_without_service = set(), set(), 0
    for group in groups:
        function = group.rsplit(f"{STACK}-", 1)[-1]
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            for e in page.get("events", []):
                for raw in e["message"].splitlines():
                    text = raw.strip()
                    if not text or text.startswith(PLATFORM_PREFIXES):
                        continue
                    try:
                        line = json.loads(text)
                    except ValueError:
                        not_json.append(f"{function}: {text[:160]}")
                        continue
                    if not isinstance(line, dict):
                        not_json.append(f"{function}: {text[:160]}")
                        continue
                    if "_aws" in line:  # a metric document (EMF)
                        for m in line["_aws"].get("CloudWatchMetrics", []):
                            emf_namespaces.add(m.get("Namespace"))
                            emf_metrics.update(x.get("Name") for x in m.get("Metrics", []))
                        if line.get("service") != function:
                            emf_without_service += 1
                        continue
                    if str(line.get("type", "")).startswith("platform."):
                        continue  # Lambda's own JSON line
                    app_lines += 1
                    if any(k not in line for k in LOG_KEYS):
                        missing.append(f"{function}: {sorted(set(LOG_KEYS) - set(line))}")
                    services.setdefault(function, set()).add(line.get("service"))
                    if line.get("order_id") == order_a:
                        if not order_lines:
                            log(f"  a line of order A, from {function}: {text[:400]}")
                        order_lines += 1
                        if not line.get("function_request_id"):
                            missing.append(f"{function}: a line of order A without function_request_id")
    expect(not not_json, f"every application log line is JSON ({len(not_json)} not: {not_json[:3]})")
    expect(app_lines > 0 and not missing,
           f"{app_lines} application lines in {len(groups)} log groups, each with {', '.join(LOG_KEYS)} ({missing[:3]})")
    wrong = {f: s for f, s in services.items() if s != {f}}
    expect(not wrong, f"each function's lines name it as their service ({wrong})")
    expect(order_lines > 0, f"{order_lines} lines of order A, each with its invocation's function_request_id")
    expect(emf_namespaces == {METRICS_NAMESPACE},
           f"every EMF document in the namespace the template's MetricsNamespace gives ({sorted(map(str, emf_namespaces))})")
    expect(EXPECTED_METRICS <= emf_metrics and emf_without_service == 0,
           f"EMF metrics {sorted(EXPECTED_METRICS)} flushed, each document with its function as `service` "
           f"(seen: {sorted(map(str, emf_metrics))}; {emf_without_service} without)")


def app_lines(logs, function: str, order_id: str) -> list:
    """The function's JSON application lines about one order."""
    out = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{STACK}-{function}"):
        for e in page.get("events", []):
            try:
                line = json.loads(e["message"])
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("order_id") == order_id:
                out.append(line)
    return out


def xray_id(traceparent: str) -> str:
    """The X-Ray trace id of a W3C traceparent (00-<32 hex>-<16 hex>-<flags>)."""
    trace = traceparent.split("-")[1]
    return f"1-{trace[:8]}-{trace[8:]}"


def check_one_trace(logs, ddb, table: str, pg: str, order_id: str) -> None:
    """Order A's paying request, the OrderPaid event it wrote to the outbox,
    the PutEvents entry the publisher made of it and each consumer's handling
    of it (replays and republishes included) share one trace id."""
    answered = [l for l in app_lines(logs, "confirm-payment", order_id) if l.get("message") == "answered"]
    expect(len(answered) == 1 and str(answered[0].get("xray_trace_id", "")).startswith("1-"),
           f"confirm-payment answered order A once, in an X-Ray trace ({answered})")
    trace = answered[0]["xray_trace_id"]
    items = ddb.query(TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
                      ExpressionAttributeValues={":pk": {"S": f"ORDER#{order_id}"}, ":sk": {"S": "EVENT#"}})["Items"]
    paid = [json.loads(i["detail"]["S"]) for i in items if i["detailType"]["S"] == "OrderPaid"]
    expect(len(paid) == 1 and paid[0].get("traceparent") and xray_id(paid[0]["traceparent"]) == trace,
           f"the OrderPaid outbox event stores that trace ({paid[0].get('traceparent') if paid else None} ~ {trace})")
    published = [l for l in app_lines(logs, "stream-publisher", order_id)
                 if l.get("message") == "published" and l.get("detail_type") == "OrderPaid"]
    expect(published and all(l.get("xray_trace_id") == trace and str(l.get("trace_header", "")).startswith(f"Root={trace};")
                             for l in published),
           f"{len(published)} PutEvents entr(ies) of it with TraceHeader Root={trace} "
           f"({[l.get('trace_header') for l in published]})")
    for consumer in ("coupon", "analytics"):
        handled = [l for l in app_lines(logs, consumer, order_id)
                   if l.get("message") == "handled" and l.get("detail_type") == "OrderPaid"]
        expect(handled and all(l.get("xray_trace_id") == trace for l in handled),
               f"{consumer}: {len(handled)} handling(s) of it, each in trace {trace} "
               f"({sorted({str(l.get('xray_trace_id')) for l in handled})}, outcomes {[l.get('outcome') for l in handled]})")
    _, calls = http("GET", f"{pg}/v1/sim/calls?orderId={order_id}&op=confirm")
    calls = calls if isinstance(calls, list) else (calls or {}).get("calls", [])
    expect(len(calls) == 1 and calls[0].get("correlationId") == answered[0].get("correlation_id")
           and xray_id(calls[0].get("traceparent") or "0-0-0") == trace,
           f"the PG's confirm call carried the request's correlation id and trace ({calls})")


def dump_function_logs(endpoint: str, lines: int = 25) -> None:
    """The last lines each deployed function logged (CloudWatch Logs)."""
    try:
        logs = boto3.client("logs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}-").get("logGroups", []):
            events = [e for p in logs.get_paginator("filter_log_events").paginate(logGroupName=g["logGroupName"])
                      for e in p.get("events", [])]
            if events:
                text = "\n".join(e["message"].rstrip() for e in events[-lines:])
                print(f"\n----- last lines of {g['logGroupName']} -----\n{text}", flush=True)
    except Exception as e:  # noqa: BLE001 - diagnostics only
        print(f"(function logs unavailable: {e!r})", flush=True)


def start_console(procs, bin_dir, env, work, name: str, allow_actions: bool):
    """`shop console --stack` in the background: its URL and the operator token it prints."""
    port = free_port()
    argv = [str(bin_dir / "shop"), "console", "--stack", STACK, "--port", str(port)]
    if allow_actions:
        argv.append("--allow-actions")
    logfile = procs.start(name, argv, {k: v for k, v in env.items() if k != "SHOP_JWT_SECRET"})
    wait_port(port, name)

    def token():
        lines = logfile.read_text(errors="replace").splitlines()
        return next((l.strip() for l in lines if l.count(".") == 2 and " " not in l.strip()), None)

    return f"http://127.0.0.1:{port}", wait_for(f"{name}'s operator token", token, 30)


def form_post(url: str, fields: dict, token: str):
    """A form POST (as the console's pages send), not following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "authorization": f"Bearer {token}", "content-type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=60) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def settled(cfn):
    """The stack once no operation is in progress on it, else None."""
    s = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    return None if s["StackStatus"].endswith("IN_PROGRESS") else s


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def webhooks(pg: str, order_id: str) -> list:
    _, body = http("GET", f"{pg}/v1/sim/webhooks?orderId={order_id}")
    return body if isinstance(body, list) else (body or {}).get("webhooks", [])


def checkout(pg: str, order_id: str, amount: int) -> str:
    """The payment widget: the simulator's paymentKey for this order."""
    status, body = http("POST", f"{pg}/v1/sim/checkout", {"orderId": order_id, "amount": amount, "method": "CARD"})
    if status != 200 or not isinstance(body, dict) or "paymentKey" not in body:
        raise Failed(f"checkout at the PG simulator: {status} {body}")
    return body["paymentKey"]


def sim_payments(pg: str, payment_key: str) -> list:
    _, body = http("GET", f"{pg}/v1/sim/payments?paymentKey={payment_key}")
    if isinstance(body, dict):
        return list(body.values()) if "payments" not in body else body["payments"]
    return body or []


def timeline_has(body, detail_type: str, consumer: str) -> bool:
    steps = (body or {}).get("timeline", []) if isinstance(body, dict) else []
    return any(st.get("detailType") == detail_type for st in steps) and any(
        st.get("consumer") == consumer and st.get("status") == "DONE" for st in steps)


def deliveries(sink: str, order_id: str = "") -> list:
    """The sink's deliveries (one order's with `order_id`; a run here is well under a page)."""
    _, body = http("GET", f"{sink}/sim/deliveries" + (f"?orderId={order_id}" if order_id else ""))
    return body if isinstance(body, list) else (body or {}).get("deliveries", [])


def delivered(sink: str, order_id: str) -> set:
    return {d["detailType"] for d in deliveries(sink, order_id) if d.get("status") == 200}


def coupon_status(body, coupon_id: str):
    for c in (body or {}).get("coupons", []):
        if c.get("couponId") == coupon_id:
            return c.get("status")
    return None


def depth(sqs, url: str, in_flight: bool = False) -> int:
    names = ["ApproximateNumberOfMessages"] + (["ApproximateNumberOfMessagesNotVisible"] if in_flight else [])
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(a.get(n, 0)) for n in names)


if __name__ == "__main__":
    sys.exit(main())
