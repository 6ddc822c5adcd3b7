"""Provider dialects behind :class:`payments.port.PaymentGateway`."""
