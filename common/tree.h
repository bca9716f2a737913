/* Removing a directory tree: what `baton dev` clears before a fresh Redis
 * Cluster, and what the tests and the bench leave behind them. */
#ifndef BT_TREE_H
#define BT_TREE_H

/* Removes dir and everything below it, following no symbolic link. Returns
 * 0, or -1 with errno (ENOENT: dir was not there). */
int bt_remove_tree(const char *dir);

#endif
