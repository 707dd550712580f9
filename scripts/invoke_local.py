"""Invoke the release bootstrap under AWS's own Lambda Runtime Interface Emulator, without Docker.

`sam local invoke` runs the function inside a container under the Runtime Interface Emulator (RIE)
that ships in the aws-sam-cli package (samcli/local/rapid/aws-lambda-rie-<arch>). This runs the
same RIE binary, from the pinned venv, directly on this machine: it starts the RIE with the
bootstrap on free loopback ports, invokes it once per event through the RIE's Invoke API with
boto3's Lambda client (the real caller), prints one JSON line per invocation, and stops the RIE
by its process group.

The function gets this process's environment: AWS credentials and region, AWS_ENDPOINT_URL if set,
and the function's own settings (DRY_RUN, VERIFY_FINDINGS, ...). With real credentials it acts on
the account they belong to.

    python scripts/invoke_local.py --bootstrap target/lambda/host/exfil-responder/bootstrap EVENT...

Exit status: 0 if every invocation answered without a function error, 1 otherwise, 2 on bad use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import samcli
from botocore.config import Config

# How long the RIE may take to listen: it starts in milliseconds; this bounds a broken start.
READY_WITHIN_SECONDS = 30


def rie_binary() -> Path:
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    path = Path(samcli.__file__).parent / "local" / "rapid" / f"aws-lambda-rie-{arch}"
    if not path.is_file():
        sys.exit(f"error: the aws-sam-cli package has no {path.name} at {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, rie: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if rie.poll() is not None:
            sys.exit(f"error: the Runtime Interface Emulator exited with {rie.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"error: the Runtime Interface Emulator did not listen on 127.0.0.1:{port} within {READY_WITHIN_SECONDS} s")


def start(bootstrap: Path) -> tuple[subprocess.Popen, int]:
    invoke_port, runtime_port = free_port(), free_port()
    rie = subprocess.Popen(
        [
            str(rie_binary()),
            "--runtime-interface-emulator-address", f"127.0.0.1:{invoke_port}",
            "--runtime-api-address", f"127.0.0.1:{runtime_port}",
            str(bootstrap),
        ],
        env={**os.environ, "AWS_LAMBDA_FUNCTION_TIMEOUT": os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "300")},
        stdin=subprocess.DEVNULL,
        # The function's logs, and the RIE's own, go to stderr: stdout carries only the answers.
        stdout=sys.stderr,
        stderr=sys.stderr,
        start_new_session=True,
    )
    wait_listening(invoke_port, rie)
    return rie, invoke_port


def stop(rie: subprocess.Popen) -> None:
    try:
        os.killpg(rie.pid, signal.SIGTERM)
        rie.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(rie.pid, signal.SIGKILL)
        rie.wait()
    except ProcessLookupError:
        pass


def invoke(port: int, payload: bytes) -> dict:
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        # One attempt: a retried invocation would be a second delivery of the event.
        config=Config(retries={"total_max_attempts": 1}, read_timeout=900, connect_timeout=5),
    )
    answer = client.invoke(FunctionName="function", Payload=payload)
    body = answer["Payload"].read()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body.decode(errors="replace")
    # Lambda marks a function error with the X-Amz-Function-Error header; the RIE answers 200 with
    # the error's body and no such header. So an answer in the runtime's error shape counts too.
    error_shaped = isinstance(parsed, dict) and set(parsed) >= {"errorType", "errorMessage"}
    return {
        "statusCode": answer["StatusCode"],
        "functionError": answer.get("FunctionError"),
        "failed": answer.get("FunctionError") is not None or error_shaped,
        "payload": parsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=Path, required=True, help="the release bootstrap (make bootstrap)")
    parser.add_argument("events", nargs="+", type=Path, help="JSON payloads, e.g. events/outside-aws.json")
    args = parser.parse_args()
    if not args.bootstrap.is_file():
        print(f"error: no bootstrap at {args.bootstrap}: run make bootstrap", file=sys.stderr)
        return 2
    payloads = []
    for path in args.events:
        try:
            payloads.append(json.dumps(json.loads(path.read_text())).encode())
        except (OSError, ValueError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
    rie, port = start(args.bootstrap)
    failed = False
    try:
        for payload in payloads:
            answer = invoke(port, payload)
            failed |= answer["failed"]
            print(json.dumps(answer), flush=True)
    finally:
        stop(rie)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
