"""TechMarket: the API of the Ningbo city technology market (宁波科技大市场)."""
