"""Platform adapters: the only code that knows Slack, Telegram or HTTP shapes."""
