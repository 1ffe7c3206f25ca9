from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from market.auth.models import Role
from market.auth.passwords import MAX_PASSWORD_LENGTH, password_problem
from market.common.text import one_line


def _acceptable_password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise ValueError(f"password {problem}")
    return password


NewPassword = Annotated[
    str, Field(max_length=MAX_PASSWORD_LENGTH), AfterValidator(_acceptable_password)
]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(one_line),
]


class LoginRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: NewPassword


class UserCreate(BaseModel):
    email: EmailStr
    display_name: DisplayName
    password: NewPassword
    role: Role = Role.MEMBER


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    role: Role
    organization_id: int
    is_active: bool
