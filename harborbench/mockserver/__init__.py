"""mockserver package."""
