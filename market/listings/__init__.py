"""The catalogue: research results and patents (supply) and enterprise demands."""
