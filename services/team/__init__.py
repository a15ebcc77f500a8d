"""The desktop in a team (T5): its account on a team server and its local replica."""
