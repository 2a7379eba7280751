"""The password policy: long enough, not the username, not one of the passwords everyone tries.

Pure functions of plain strings: :func:`password_problems` lists everything wrong with a password
so that the person fixes it in one go, :func:`check_password_policy` raises with that list.

>>> password_problems("awa12345678", username="awa")
['it contains the username']
>>> password_problems("azertyuiop", username="kone")
['it is one of the most common passwords (or a keyboard pattern)']
>>> password_problems("a long passphrase", username="awa")
[]
"""

from __future__ import annotations

import re

from clms.i18n import Msg

DEFAULT_MIN_LENGTH = 10

# The passwords (and keyboard walks) that guessing tools try first, written out here in lower
# case; matching ignores case, and a listed word followed by a few digits or symbols
# ("password2024!") counts as the word itself. French ones are included: French is a working
# language of many of the places this system runs in (AZERTY keyboards, "motdepasse").
_COMMON_TEXT = """
123456 123456789 12345678 12345 1234567 1234567890 0123456789 0987654321 9876543210 111111
000000 123123 1234 654321 666666 121212 112233 123321 7777777 987654321 11111111 123qwe
password password1 password12 password123 passw0rd p@ssw0rd p@ssword pa$$word passwort
motdepasse mot2passe motdepasse1 azerty azerty123 azertyuiop azertyuiop1 qsdfghjklm wxcvbn
azertyui qwerty qwerty1 qwerty12 qwerty123 qwerty1234 qwerty12345 qwertyuiop qwertyuiop1
qwertz qwertzuiop asdfgh asdfghjkl asdfghjkl; zxcvbnm zxcvbnm, zxcvbn 1q2w3e4r 1q2w3e4r5t
1q2w3e4r5t6y 1qaz2wsx 1qaz2wsx3edc zaq12wsx zaq1zaq1 zaq1xsw2cde3 !qaz2wsx qazwsx qazwsxedc
qweasd qweasdzxc qweasdzxc123 asdasd asdqwe123 1qazxsw2 q1w2e3r4 q1w2e3r4t5 a1b2c3d4
a1b2c3d4e5 abc123 abcd1234 abcdef abcdefg abcdefgh abcdefghij abc12345 aaaaaa a123456
123abc 123456a 123456789a 1234qwer qwer1234 trustno1 iloveyou iloveyou1 iloveyou2 jetaime
jetaime1 teamo loveyou lovely letmein letmein1 welcome welcome1 welcome123 bienvenue
bienvenue1 admin admin123 admin1234 administrator administrateur root toor changeme
changeme123 default guest user test test123 testing secret secret123 master master123
login login123 access access123 pass pass123 passpass monkey dragon shadow sunshine
princess football baseball basketball soccer superman batman spiderman starwars pokemon
michael jennifer jordan jordan23 charlie daniel thomas nicole jessica ashley michelle
killer hunter ranger buster tigger ginger pepper cookie cheese summer winter flower
freedom whatever computer internet samsung google facebook youtube linkedin yahoo
hello hello123 helloworld bonjour bonjour1 salut soleil doudou loulou chouchou nounours
marseille paris chocolat chocolate cocoa cacao abidjan coteivoire ivoire africa afrique
ghana nigeria lagos accra allah bismillah jesus jesus123 jesuschrist godisgood blessed
christ amen dieu merci family familia mother father maman papa baby babygirl angel angel1
princesse superstar rockstar money money123 dollar 88888888 55555555 12341234 11223344
147258369 159753 159357 741852963 789456123 147852369 963852741 741852 852456 456789
q1w2e3 zxc123 zxcvb12345 asdf1234 1234asdf asdf;lkj qazxswedc poiuytreza mnbvcxz
poiuytrewq lkjhgfdsa 1111111111 2222222222 0000000000 12345qwert qwert12345 123456qwerty
"""

COMMON_PASSWORDS = frozenset(_COMMON_TEXT.split())
# what may be tacked onto a common word without making it any less guessable
_TAIL = re.compile(r"[\d\W_]{1,6}$")
_HEAD = re.compile(r"^[\d\W_]{1,4}")


def password_problems(password: str, username: str = "", min_length: int = DEFAULT_MIN_LENGTH):
    """Everything wrong with ``password`` for ``username``, as short phrases (empty: it is fine).

    >>> password_problems("aaaaaaaaaaaa")
    ['every character is the same']
    >>> password_problems("short")
    ['it is 5 characters long; it needs at least 10 characters']
    """
    return [str(problem) for problem in password_problem_messages(password, username, min_length)]


def password_problem_messages(
    password: str, username: str = "", min_length: int = DEFAULT_MIN_LENGTH
) -> list[Msg]:
    """:func:`password_problems`, each a :class:`~clms.i18n.Msg` (shown in the reader's
    language on the web)."""
    problems = []
    if len(password) < min_length:
        problems.append(
            Msg(
                "it is {length} characters long; it needs at least {min_length} characters",
                length=len(password),
                min_length=min_length,
            )
        )
    lowered = password.lower()
    name = username.strip().lower()
    if name and lowered == name:
        problems.append(Msg("it is the username"))
    elif name and len(name) >= 3 and name in lowered:
        problems.append(Msg("it contains the username"))
    if password and len(set(password)) == 1:
        problems.append(Msg("every character is the same"))
    elif _is_repeated_pattern(lowered):
        problems.append(Msg("it is a short pattern repeated"))
    elif _is_sequence(lowered):
        problems.append(Msg("it is a run of consecutive characters"))
    elif _is_common(lowered):
        problems.append(Msg("it is one of the most common passwords (or a keyboard pattern)"))
    return problems


def password_refusal(
    password: str, username: str = "", min_length: int = DEFAULT_MIN_LENGTH
) -> Msg | None:
    """Why ``password`` is refused, every problem in one message; None: it is fine.

    >>> str(password_refusal("awa", "awa", 10))
    'This password is refused: it is 3 characters long; it needs at least 10 characters; it is \
the username.'
    >>> password_refusal("a long passphrase", "awa") is None
    True
    """
    problems = password_problem_messages(password, username, min_length)
    if not problems:
        return None
    return Msg("This password is refused: {problems}.", problems=_Joined(problems))


class _Joined(Msg):
    """Messages shown one after the other, each in the reader's language, joined by ``; ``."""

    def __init__(self, parts: list[Msg]):
        super().__init__("; ".join(str(part) for part in parts))
        self.params = {"parts": parts}

    def render(self, translate=None) -> str:
        return "; ".join(part.render(translate) for part in self.params["parts"])


def check_password_policy(
    password: str, username: str = "", min_length: int = DEFAULT_MIN_LENGTH
) -> None:
    """Raise ``ValueError`` saying everything wrong with ``password``, or return.

    >>> check_password_policy("password", "awa")
    Traceback (most recent call last):
    ...
    ValueError: This password is refused: it is 8 characters long; it needs at least 10 \
characters; it is one of the most common passwords (or a keyboard pattern).
    """
    refusal = password_refusal(password, username, min_length)
    if refusal is not None:
        raise ValueError(str(refusal))


def _is_common(lowered: str) -> bool:
    """A listed password, maybe with a few digits or symbols before or after it."""
    if lowered in COMMON_PASSWORDS or lowered.replace(" ", "") in COMMON_PASSWORDS:
        return True
    core = _HEAD.sub("", _TAIL.sub("", lowered))
    return len(core) >= 4 and core in COMMON_PASSWORDS


def _is_repeated_pattern(lowered: str) -> bool:
    """``abcabcabcabc``, ``1212121212``: a unit of up to four characters, repeated."""
    for size in range(2, 5):
        unit = lowered[:size]
        if len(lowered) >= 2 * size and (unit * (len(lowered) // size + 1))[: len(lowered)] == (
            lowered
        ):
            return True
    return False


def _is_sequence(lowered: str) -> bool:
    """``abcdefghijk``, ``9876543210``: each character one after (or before) the previous."""
    if len(lowered) < 4:
        return False
    steps = {ord(b) - ord(a) for a, b in zip(lowered, lowered[1:], strict=False)}
    return steps in ({1}, {-1})
