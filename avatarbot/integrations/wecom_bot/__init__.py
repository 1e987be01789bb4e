"""WeCom AI bot (智能机器人): long connection (default) or encrypted JSON webhook."""
