"""One sample worked through: the trace, the steps of the derivation, rendering."""
