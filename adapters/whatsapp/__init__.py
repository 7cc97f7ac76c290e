"""WhatsApp (Cloud API) for generated bots: the plugin (`plugin.PLUGIN`), the channel
(`channel.WhatsAppChannel`), its webhook payloads and its renderer."""
