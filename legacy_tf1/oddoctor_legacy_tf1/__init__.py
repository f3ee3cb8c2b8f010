"""Legacy TF1 Object Detection models and inference patterns (the leak and its fix)."""
