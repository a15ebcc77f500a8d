"""Pure UI rules: when something counts as seen, what a new message sets off, how do not
disturb reads. Plain data and times in, decisions out; no Qt, so they test without a window."""
