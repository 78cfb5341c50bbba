# What zsh's completion system offers for a command line, from a real interactive zsh on a
# pseudo-terminal (the zsh/zpty module): compinit, the script sourced as ~/.zshrc would, TAB.
# usage: zsh -f complete.zsh SCRIPT 'LINE'
# Prints the pty's output; the candidates are the `<hit>` lines between the two NUL lines that
# the completion system's pre and post hooks print (the post hook then ends the shell).
zmodload zsh/zpty || { print -u2 'zsh has no zsh/zpty module'; exit 2 }
zpty z zsh -f -i
zpty -w z 'PROMPT= RPROMPT=; autoload -U compinit && compinit -u -D'
zpty -w z "source ${(q)1}"
zpty -w z "bindkey '^I' complete-word"
zpty -w z $'null-line() { print -n -- \'\\0\\n\' }'
zpty -w z 'compprefuncs=(null-line); comppostfuncs=(null-line exit)'
# Each candidate compadd would offer (after its own matching against the word) as <hit>LINE.
zpty -w z $'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits; builtin compadd -A __hits "$@"; print -l -- "<hit>"${^__hits}
}'
zpty -w z "$2"$'\t'
while zpty -r z; do :; done
