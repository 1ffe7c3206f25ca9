from market.openapi_export import OPENAPI_FILE, render_openapi


def test_openapi_yaml_is_current() -> None:
    """openapi.yaml is what clients code against: it must match the routes."""
    assert OPENAPI_FILE.read_text(encoding="utf-8") == render_openapi(), (
        "openapi.yaml is stale: run `.venv/bin/market openapi` and commit it"
    )


def test_every_error_response_uses_the_problem_shape() -> None:
    import yaml

    document = yaml.safe_load(render_openapi())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)
