"""Small building blocks shared by every domain: text, pagination, enums."""
