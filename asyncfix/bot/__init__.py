"""``asyncfix bot``: fix a repository on branches of its own and open pull requests for them.

Per group of rules (all, one rule, one family), in a scratch work tree of the clone's
commit: run the fixes, commit them on ``asyncfix/<group>``, push when the content changed,
then open the group's pull request, or update the open one, or leave things be (a person
pushed to the branch, or closed a pull request with these very fixes without merging).
"""
