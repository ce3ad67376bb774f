"""The model registry: which sha256-verified model directory every running dataflow scores with."""
