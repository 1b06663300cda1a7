import pytest

from orderlab.settings import Settings, SettingsError


def test_defaults():
    settings = Settings.from_env({})
    assert settings.bootstrap_servers == "localhost:9092"
    assert settings.order_details_topic == "order_details"
    assert settings.exactly_once is False


def test_arguments_win_over_environment_which_wins_over_defaults():
    env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:29092", "ORDERLAB_TOPIC_SUFFIX": "-x", "ORDERLAB_EXACTLY_ONCE": "true"}
    from_env = Settings.from_env(env)
    assert (from_env.bootstrap_servers, from_env.topic_suffix, from_env.exactly_once) == ("kafka:29092", "-x", True)
    assert Settings.from_env(env, bootstrap_servers="127.0.0.1:1").bootstrap_servers == "127.0.0.1:1"


def test_suffix_names_topics_groups_and_dead_letters():
    settings = Settings(topic_suffix="-run1")
    assert settings.data_topics == ("order_details-run1", "order_confirmed-run1", "order_declined-run1")
    assert settings.group_id("transactions") == "orderlab-transactions-run1"
    assert settings.dlq_topic(settings.order_details_topic) == "order_details-run1.dlq"


@pytest.mark.parametrize("env, message", [
    ({"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "is not host:port"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "localhost:notaport"}, "is not host:port"),
    ({"ORDERLAB_EXACTLY_ONCE": "maybe"}, "ORDERLAB_EXACTLY_ONCE='maybe' is not a valid bool"),
    ({"ORDERLAB_SMTP_PORT": "70000"}, "smtp_port must be a TCP port"),
    ({"ORDERLAB_SMTP_PORT": "abc"}, "ORDERLAB_SMTP_PORT='abc' is not a valid int"),
    ({"ORDERLAB_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "sasl_mechanism must be one of"),
    ({"ORDERLAB_DB_URL": "postgres://x"}, "db_url must look like sqlite"),
])
def test_bad_values_give_one_clear_error(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Settings.from_env(env)


def test_db_path(tmp_path, monkeypatch):
    assert Settings(db_url=f"sqlite:///{tmp_path}/l.db").db_path == f"{tmp_path}/l.db"
    assert Settings(db_url="sqlite://").db_path == ":memory:"
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path))
    assert Settings().db_path == str(tmp_path / "ledger.db")


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().bootstrap_servers = "x:1"  # type: ignore[misc]

