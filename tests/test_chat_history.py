"""Chat history per owner, and the per-session rule that queues messages sent during an answer."""

from __future__ import annotations

import json
import threading

import pytest

from playground import chat_history as ch
from playground.errors import PlaygroundError
from playground.generation.model_defaults import CHAT_DEFAULT, model_decoding
from playground.paths import data_dir
from playground.ui.chat.session import ChatSession, forget, session_for

TURNS = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


def test_saved_conversation_reloads_for_its_owner_only():
    alice, bob = ch.owner_name("alice", None), ch.owner_name("bob", None)
    cid = ch.save_conversation(alice, None, TURNS)
    assert ch.load_conversation(alice, cid) == TURNS
    assert [c.id for c in ch.list_conversations(alice)] == [cid]
    assert ch.list_conversations(bob) == []
    with pytest.raises(PlaygroundError):
        ch.load_conversation(bob, cid)  # another owner's id opens nothing


def test_saving_again_updates_in_place_and_newest_is_first():
    owner = ch.owner_name(None, ch.new_browser_id())
    first = ch.save_conversation(owner, None, TURNS)
    second = ch.save_conversation(owner, None, [{"role": "user", "content": "Second chat"}])
    assert ch.save_conversation(owner, first, TURNS + [{"role": "user", "content": "more"}]) == first
    listed = ch.list_conversations(owner)
    assert [c.id for c in listed] == [first, second]
    assert listed[0].title == "Hi"
    assert ch.save_conversation(owner, None, []) is None  # an empty chat is not stored


def test_owner_text_and_ids_never_become_paths():
    evil = ch.owner_name("../../etc", None)
    cid = ch.save_conversation(evil, None, TURNS)
    stored = list((data_dir() / "chats").rglob("*.json"))
    assert len(stored) == 1 and stored[0].parent.parent == data_dir() / "chats"
    for bad in ("../x", "a" * 32, "", "0" * 31 + "/"):
        with pytest.raises(PlaygroundError):
            ch.load_conversation(evil, bad)
    assert ch.load_conversation(evil, cid) == TURNS
    assert ch.owner_name(None, "../not-an-id") is None
    assert ch.owner_name(None, None) is None


def test_only_text_turns_are_kept_and_limits_hold(monkeypatch):
    monkeypatch.setattr(ch, "MAX_CONVERSATIONS", 3)
    owner = ch.owner_name("carol", None)
    messy = [{"role": "system", "content": "x"}, {"role": "user", "content": None}, "junk", *TURNS]
    cid = ch.save_conversation(owner, None, messy)
    assert ch.load_conversation(owner, cid) == [{"role": "user", "content": ""}, *TURNS]
    for n in range(5):
        ch.save_conversation(owner, None, [{"role": "user", "content": f"chat {n}"}])
    assert len(ch.list_conversations(owner)) == 3


def test_a_damaged_file_is_skipped_not_fatal():
    owner = ch.owner_name("dave", None)
    cid = ch.save_conversation(owner, None, TURNS)
    path = next((data_dir() / "chats").rglob(f"{cid}.json"))
    path.write_text("{not json", encoding="utf-8")
    assert ch.list_conversations(owner) == []
    with pytest.raises(PlaygroundError):
        ch.load_conversation(owner, cid)


def test_markdown_export():
    assert ch.as_markdown(TURNS) == "**User:**\n\nHi\n\n---\n\n**Assistant:**\n\nHello!\n"
    assert ch.as_markdown([]) == ""


def test_browser_secret_is_stable():
    assert ch.browser_secret() == ch.browser_secret()
    assert json.dumps(ch.browser_secret())


def test_messages_sent_during_an_answer_wait_their_turn():
    s = ChatSession()
    assert s.send("first")  # starts a turn
    assert not s.send("second") and not s.send("third")  # queued while busy
    assert s.peek() == ["second", "third"]
    assert s.next_messages(has_question=True) == ["second", "third"]
    assert s.busy
    assert s.next_messages(has_question=False) is None  # nothing left: the turn ends
    assert not s.busy and s.send("fourth")


def test_claim_refuses_while_busy_and_release_frees():
    s = ChatSession()
    assert s.claim() and not s.claim()
    s.release()
    assert s.claim()


def test_no_message_is_lost_between_ending_a_turn_and_sending():
    """Every message is either shown at once (a turn starts) or handed to the running turn."""
    s = ChatSession()
    s.send("start")
    shown: list[str] = []

    def sender() -> None:
        for n in range(500):
            if s.send(f"m{n}"):
                shown.append(f"m{n}")

    thread = threading.Thread(target=sender)
    thread.start()
    answered: list[str] = []
    while thread.is_alive():
        answered.extend(s.next_messages(has_question=False) or [])  # a turn ending, again and again
    thread.join()
    answered.extend(s.next_messages(has_question=False) or [])
    assert sorted(shown + answered, key=lambda m: int(m[1:])) == [f"m{n}" for n in range(500)]
    assert len(set(shown) & set(answered)) == 0


def test_closing_the_tab_stops_its_answer():
    session = session_for("tab-1")
    flag = session.new_stop()
    forget("tab-1")
    assert flag.is_set()
    assert session_for("tab-1") is not session


class _Config:
    def __init__(self, **values):
        self.__dict__.update(values)


def test_model_defaults_preset_then_generation_config_then_ours():
    card = model_decoding("smollm2-135m-instruct")
    assert card.settings.temperature == 0.2 and card.source == "the model card"
    assert model_decoding("HuggingFaceTB/SmolLM2-135M-Instruct").settings == card.settings
    own = model_decoding("org/unknown", _Config(do_sample=True, temperature=0.6, top_p=0.8, top_k=20))
    assert (own.settings.temperature, own.settings.top_p, own.settings.top_k) == (0.6, 0.8, 20)
    assert own.source == "the model's generation_config"
    assert model_decoding("org/unknown", _Config(do_sample=False, temperature=0.6)).settings == CHAT_DEFAULT
    odd = model_decoding("org/unknown", _Config(do_sample=True, temperature=-3))
    assert odd.settings == CHAT_DEFAULT  # a config with impossible values is not used
