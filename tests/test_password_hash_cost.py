"""Passwords are hashed at argon2's production cost unless a test suite asks for the cheap one.

The test session itself runs on the cheap hash (tests/conftest.py), so this looks from a fresh
interpreter, where nothing has switched it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from allpath.settings import Settings

SCRIPT = """
from allpath.api import create_app
from allpath.settings import AuthSettings, DatabaseSettings, Settings
from allpath.store.auth import hash_password

print(hash_password("correct-horse-battery-1"))
flagged = AuthSettings(insecure_test_password_hash=True)
create_app(settings=Settings(database=DatabaseSettings(url="sqlite://"), auth=flagged))
print(hash_password("correct-horse-battery-1"))
"""


def test_production_hashes_at_argon2s_default_cost_and_only_the_test_flag_lowers_it() -> None:
    assert Settings().auth.insecure_test_password_hash is False
    assert Settings.from_env({}).auth.insecure_test_password_hash is False
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLPATH_")}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    default, flagged = result.stdout.split()
    assert default.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), default
    assert flagged.startswith("$argon2id$v=19$m=8,t=1,p=1$"), flagged
    assert Settings.from_env({"ALLPATH_INSECURE_TEST_PASSWORD_HASH": "1"}).auth.insecure_test_password_hash
