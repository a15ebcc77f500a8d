"""Qt widgets that draw and take input: plain data in, signals out, no service, no bridge."""
