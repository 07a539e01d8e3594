from bot.shared import language


def test_explicit_requests_in_both_languages():
    assert language.detect("kan het in het Engels?") == "en"
    assert language.detect("in English please") == "en"
    assert language.detect("Nederlands graag") == "nl"
    assert language.detect("can we switch to dutch") == "nl"


def test_short_messages_use_the_lexicon_not_a_guess():
    assert language.detect("hallo") == "nl"
    assert language.detect("hello") == "en"
    assert language.detect("ok") is None
    assert language.detect("104233") is None
    assert language.detect("🙂") is None


def test_longer_messages_use_the_detector():
    assert language.detect("hoi waar blijft mn pakketje nou") == "nl"
    assert language.detect("hi, my parcel still hasn't arrived") == "en"


def test_choose_keeps_the_current_language_when_unclear():
    assert language.choose("ok", "en") == "en"
    assert language.choose("ok", None) == "nl"
    assert language.choose("where is my order please", "nl") == "en"


def test_a_buttons_payload_keeps_the_conversations_language():
    """A Dutch customer tapping a button sends `/intent{"slot": "value"}`: English-looking words
    that must not switch the conversation to English."""
    assert language.detect('/continue_on_channel{"channel": "telegram"}') is None
    assert language.choose('/choose_order{"order_number": "104233"}', "nl") == "nl"
    assert language.choose("/start", "nl") == "nl"
