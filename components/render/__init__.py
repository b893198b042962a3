"""Pure renderers: settings in, text or plain data out. No Pulumi in here, so every one is a plain-function test."""
