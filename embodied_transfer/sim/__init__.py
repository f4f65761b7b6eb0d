"""MuJoCo simulation: models (XML beside the Python that drives them) and sensor models."""
