"""The pool id: written and taken apart in one place."""

import json

import pytest

from queue_service.pools import PoolId
from queue_service.store.keys import PoolKeys


def test_a_pool_id_is_its_text_and_knows_its_parts():
    pool = PoolId.of("01", "renewal")
    assert pool == "01:renewal"
    assert (pool.prefecture, pool.procedure) == ("01", "renewal")
    prefecture, procedure = PoolId("2A:first_request").parts
    assert (prefecture, procedure) == ("2A", "first_request")
    assert json.dumps({"pool": pool}) == '{"pool": "01:renewal"}'
    assert PoolKeys(pool).waiting == PoolKeys("01:renewal").waiting


@pytest.mark.parametrize("text", ["", "01", "01:", ":renewal", "01:renewal:extra"])
def test_a_malformed_pool_id_is_refused(text):
    with pytest.raises(ValueError, match="not a pool id"):
        PoolId(text)
