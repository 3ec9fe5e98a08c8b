"""`ml-assets init`: a dataset folder from a user's file (profile -> infer -> propose -> write)."""
