"""The evaluation harness: measures the product from outside (conversations, later more)."""
