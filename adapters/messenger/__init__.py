"""Facebook Messenger for generated bots: the plugin (`plugin.PLUGIN`), the channel
(`channel.MessengerChannel`), its webhook payloads, its renderer and its typing indicator."""
