"""One file per compared method, each registering itself through the method interface."""
