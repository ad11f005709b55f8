"""Files of model outputs: reading, blocks, the accumulator and the report."""
