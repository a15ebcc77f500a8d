"""The desktop UI: `widgets/` draw and take input (no service), `windows/` compose widgets and
talk to the service and its bridge, `policies/` decide (pure, no Qt), `platform/` adapts to the
OS. `roles`, `format`, `theme`, `icons` and `tasks` are shared by all of them."""
