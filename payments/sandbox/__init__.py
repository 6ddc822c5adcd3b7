"""Stateful Alipay-style and WeChat-Pay-style sandbox gateways for development and tests.

Run one with ``python -m payments.sandbox alipay --port 8601 --key-dir var/sandbox``.
"""

from payments.sandbox.alipay import create_alipay_sandbox
from payments.sandbox.notifier import SandboxSwitches
from payments.sandbox.wechatpay import create_wechatpay_sandbox

__all__ = ["SandboxSwitches", "create_alipay_sandbox", "create_wechatpay_sandbox"]
