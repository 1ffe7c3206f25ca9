"""Row ids as the API accepts them.

Ids are positive and fit PostgreSQL's 32-bit `integer` columns: a larger number can
name no row, and passing it to the database would be an out-of-range error (a 500)
instead of a clear 422.
"""

from typing import Annotated

from fastapi import Path
from pydantic import Field

MAX_ROW_ID = 2**31 - 1

PathId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
