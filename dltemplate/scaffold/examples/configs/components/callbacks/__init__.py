"""Getters for the Lightning callbacks a run uses: `default.get_callbacks` gathers them."""
