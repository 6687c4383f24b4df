"""Model families, one file each. Import a family's module directly; ``tinyformers.auto`` maps names to them."""
