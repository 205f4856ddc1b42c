"""`consentry demo` refuses a population too small for its story, with a message, not a traceback."""

import pytest

from consentry_local import demo


@pytest.mark.parametrize("subscribers", ["10", "0", "-5"])
def test_too_few_subscribers_is_a_usage_error(subscribers: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        demo.main(["--subscribers", subscribers])
    assert exited.value.code == 2
    assert f"at least {demo.MIN_SUBSCRIBERS}" in capsys.readouterr().err
