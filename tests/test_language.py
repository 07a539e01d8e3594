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


def test_short_messages_never_flip_a_conversation():
    """Issue 11 pattern 4: "oke thx" in a Dutch conversation, "ja" or "thanks!" in an English one."""
    assert language.choose("oke thx", "nl") == "nl"
    assert language.choose("ok thanks", "nl") == "nl"
    assert language.choose("thanks!", "nl") == "nl"
    assert language.choose("ja", "en") == "en"
    assert language.choose("bedankt", "en") == "en"
    assert language.choose("my order is late", "nl") == "nl"  # four words, the detector unsure (0.6)
    assert language.choose("mijn email is sanne@example.nl", "en") == "en"  # identifiers are no words


def test_a_clear_message_in_the_other_language_switches():
    assert language.choose("Hi there, I ordered a vacuum cleaner last week and it has not arrived", "nl") == "en"
    assert language.choose("thank you so much for your help", "nl") == "en"
    assert language.choose("kan ik met iemand praten", "en") == "nl"
    assert language.choose("can we continue in English?", "nl") == "en"


def test_the_first_message_decides_when_nothing_is_known():
    assert language.choose("hiya", None) == "en"
    assert language.choose("hoi", None) == "nl"
    assert language.choose("oke thx", None) == "nl"  # a tie ("oke" Dutch, "thx" English): the default
