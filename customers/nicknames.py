"""Common English nicknames and spelling variants, each mapped to one canonical given name.

Identity resolution compares canonical forms, so "Bob Smith" and "Robert Smith" share a name key. The table is
deliberately small: names whose short form is unambiguous (Alex could be Alexander or Alexandra, so it stays).
"""

from __future__ import annotations

# canonical name -> the nicknames and variant spellings people write for it (no name that is
# also a given name of its own, such as Liam or Jack)
_GROUPS: dict[str, tuple[str, ...]] = {
    "robert": ("bob", "bobby", "rob", "robbie"),
    "william": ("bill", "billy", "will", "willy"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "eliza", "elisabeth"),
    "richard": ("rick", "ricky", "dick", "rich"),
    "michael": ("mike", "mick", "mikey"),
    "thomas": ("tom", "tommy"),
    "daniel": ("dan", "danny"),
    "matthew": ("matt", "matty"),
    "james": ("jim", "jimmy", "jamie"),
    "john": ("jon", "johnny"),
    "jonathan": ("jonathon", "jonny"),
    "joseph": ("joe", "joey"),
    "charles": ("charlie", "chuck"),
    "christopher": ("chris",),
    "edward": ("ed", "eddie", "ted", "ned"),
    "anthony": ("tony",),
    "andrew": ("andy",),
    "steven": ("stephen", "steve", "stevie"),
    "geoffrey": ("jeffrey", "jeff", "geoff"),
    "philip": ("phillip", "phil"),
    "kenneth": ("ken", "kenny"),
    "benjamin": ("ben", "benny"),
    "samuel": ("sam", "sammy"),
    "nicholas": ("nick", "nicky"),
    "patrick": ("pat", "paddy"),
    "peter": ("pete",),
    "david": ("dave", "davy"),
    "margaret": ("maggie", "meg", "peggy", "marge"),
    "catherine": ("katherine", "kathryn", "cathy", "kathy", "kate", "katie", "kat"),
    "jennifer": ("jen", "jenny"),
    "patricia": ("pat", "patty", "trish"),
    "rebecca": ("rebekah", "becky", "becca"),
    "sarah": ("sara",),
    "susan": ("sue", "susie"),
    "teresa": ("theresa", "terri", "tess"),
    "jessica": ("jess", "jessie"),
    "deborah": ("debbie", "deb"),
    "barbara": ("barb", "barbie"),
    "victoria": ("vicky", "tori"),
    "marcus": ("markus",),
    "elena": ("helena",),
}

NICKNAMES: dict[str, str] = {}
for _canonical, _variants in _GROUPS.items():
    for _v in _variants:
        # "pat" is ambiguous (Patrick, Patricia): the first group keeps it, which is as good as any guess.
        NICKNAMES.setdefault(_v, _canonical)


def canonical_given_name(token: str) -> str:
    """The canonical form of a lower-case given name ("bob" -> "robert"); unknown names come back unchanged."""
    return NICKNAMES.get(token, token)
