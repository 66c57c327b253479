"""HarborAI-style client under test (SPEC section 3). Imports nothing from harborbench."""
