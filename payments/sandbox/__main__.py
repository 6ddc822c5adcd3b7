"""Command line entry: serve one sandbox gateway on loopback with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from payments.sandbox import create_alipay_sandbox, create_wechatpay_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m payments.sandbox")
    parser.add_argument("gateway", choices=["alipay", "wechatpay"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8601)
    parser.add_argument("--key-dir", default="var/sandbox")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply the provider's notification retry intervals (0.001 = 1000x faster)",
    )
    args = parser.parse_args(argv)
    factory = create_alipay_sandbox if args.gateway == "alipay" else create_wechatpay_sandbox
    app = factory(args.key_dir, time_scale=args.time_scale)
    # No access log: Alipay GET requests carry biz_content (buyer identity) in the query string.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
