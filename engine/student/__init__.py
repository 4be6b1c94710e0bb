"""The student stage."""
