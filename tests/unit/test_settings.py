import os

import pytest

from orderlab.settings import Settings, SettingsError, cache_dir, configured_bootstrap, in_test_mode, order_rate


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



# -- the readers beside Settings: every variable is read in orderlab/settings.py -------------

def test_order_rate_default_and_value():
    assert order_rate({}) == 10.0
    assert order_rate({"ORDERLAB_RATE": "  "}) == 10.0
    assert order_rate({"ORDERLAB_RATE": " 2.5 "}) == 2.5
    assert order_rate({"ORDERLAB_RATE": "0"}) == 0.0


@pytest.mark.parametrize("raw, message", [
    ("fast", "ORDERLAB_RATE='fast' is not a number of orders per second"),
    ("-1", "ORDERLAB_RATE must be a finite number of orders per second >= 0, got '-1'"),
    ("inf", "ORDERLAB_RATE must be a finite number of orders per second >= 0, got 'inf'"),
    ("nan", "ORDERLAB_RATE must be a finite number of orders per second >= 0, got 'nan'"),
])
def test_bad_order_rate_is_one_line_naming_the_variable(raw, message):
    with pytest.raises(SettingsError) as caught:
        order_rate({"ORDERLAB_RATE": raw})
    assert str(caught.value) == message


@pytest.mark.parametrize("raw, expected", [("1", True), ("yes", True), (" ON ", True), ("0", False), ("off", False), ("", False)])
def test_test_mode(raw, expected):
    assert in_test_mode({"ORDERLAB_TEST_MODE": raw}) is expected
    assert in_test_mode({}) is False


def test_bad_test_mode_is_one_line_naming_the_variable():
    with pytest.raises(SettingsError) as caught:
        in_test_mode({"ORDERLAB_TEST_MODE": "maybe"})
    assert str(caught.value) == "ORDERLAB_TEST_MODE='maybe' is not a valid bool"


def test_cache_dir(tmp_path):
    assert cache_dir({"ORDERLAB_CACHE_DIR": str(tmp_path)}) == str(tmp_path)
    assert cache_dir({"ORDERLAB_CACHE_DIR": "~/x"}) == os.path.join(os.path.expanduser("~"), "x")
    assert cache_dir({}) == cache_dir({"ORDERLAB_CACHE_DIR": ""}) == os.path.join(os.path.expanduser("~"), ".cache", "orderlab")


def test_the_broker_and_the_ledger_share_one_cache_dir(tmp_path, monkeypatch):
    from orderlab.broker import default_cache_dir

    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    assert os.path.dirname(Settings().db_path) == str(tmp_path)


def test_configured_bootstrap_is_the_raw_address_or_none():
    assert configured_bootstrap({}) is None
    assert configured_bootstrap({"KAFKA_BOOTSTRAP_SERVERS": " "}) is None
    assert configured_bootstrap({"KAFKA_BOOTSTRAP_SERVERS": " nonsense "}) == "nonsense"  # `broker` only reads the port


def test_db_setting_names_the_variable_that_chose_the_ledger(tmp_path, monkeypatch):
    assert Settings(db_url="sqlite:///x/l.db").db_setting == "ORDERLAB_DB_URL=sqlite:///x/l.db"
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path))
    assert Settings().db_setting.startswith(f"ORDERLAB_CACHE_DIR={tmp_path} ")


def test_settings_written_into_an_environment_read_back_the_same():
    from orderlab.settings import child_environment

    settings = Settings(bootstrap_servers="127.0.0.1:1,127.0.0.1:2", topic_suffix="-x", exactly_once=True,
                        smtp_host="127.0.0.1", smtp_port=2525, db_url="sqlite:////tmp/l.db", connect_timeout_s=2.5)
    assert Settings.from_env(settings.as_environment()) == settings
    assert "ORDERLAB_SASL_MECHANISM" not in settings.as_environment()  # None: left unset
    inherited = {"PATH": "/bin", "ORDERLAB_CACHE_DIR": "/c", "ORDERLAB_SASL_MECHANISM": "PLAIN", "KAFKA_BOOTSTRAP_SERVERS": "other:9092",
                 "ORDERLAB_FAULT_HOLD_BEFORE_COMMIT": "3"}
    child = child_environment(settings, {"PYTHONUNBUFFERED": "1"}, env=inherited)
    assert (child["PATH"], child["ORDERLAB_CACHE_DIR"], child["PYTHONUNBUFFERED"]) == ("/bin", "/c", "1")
    assert "ORDERLAB_SASL_MECHANISM" not in child and "ORDERLAB_FAULT_HOLD_BEFORE_COMMIT" not in child
    assert Settings.from_env(child) == settings


def test_the_fault_hold_is_off_unless_set_to_a_whole_number():
    from orderlab.settings import fault_hold_before_commit

    assert fault_hold_before_commit({}) is None and fault_hold_before_commit({"ORDERLAB_FAULT_HOLD_BEFORE_COMMIT": " "}) is None
    assert fault_hold_before_commit({"ORDERLAB_FAULT_HOLD_BEFORE_COMMIT": "3"}) == 3
    for bad, message in (("x", "is not a whole number"), ("0", "must be at least 1")):
        with pytest.raises(SettingsError, match=message):
            fault_hold_before_commit({"ORDERLAB_FAULT_HOLD_BEFORE_COMMIT": bad})
