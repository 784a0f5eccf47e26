// Mirrors: fs/btrfs/transaction.c (v4.4), minimally: btrfs_join_transaction, btrfs_end_transaction,
// btrfs_commit_transaction (with write_ctree_super from disk-io.c).
//
// Model: metadata changes (file extent items, csums, snapshots) are made under a running transaction that
// counts its writers. Committing waits until the writers have left, makes the transaction's id the
// filesystem generation and writes the superblock; a task that asks to commit while a commit of the same
// transaction runs waits for that one.
// Differs: metadata lives in memory, so a commit writes no tree blocks: only the superblock with the new
// generation. There is no throttling of joins during commit and no pending-snapshot list (snapshots are
// copied by create_snapshot just before it commits).
//
// Locking legend: T = fs_info.TransLock (fs_info->trans_lock).
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>struct btrfs_transaction.</summary>
public sealed class BtrfsTransaction
{
    internal int NumWriters;          // T
    internal bool InCommit;           // T
    internal bool Committed;          // T
    internal readonly WaitQueueHead WriterWait;  // committer waits for writers to leave
    internal readonly WaitQueueHead CommitWait;  // others wait for the commit to end

    internal BtrfsTransaction(BtrfsFsInfo fsInfo, long transid)
    {
        FsInfo = fsInfo;
        Transid = transid;
        WriterWait = new WaitQueueHead(new NamedWaitResource($"writers of transaction {transid}"));
        CommitWait = new WaitQueueHead(new NamedWaitResource($"commit of transaction {transid}"));
    }

    /// <summary>transid.</summary>
    public long Transid { get; }

    internal BtrfsFsInfo FsInfo { get; }
}

/// <summary>fs/btrfs/transaction.c.</summary>
public static class Transaction
{
    /// <summary>btrfs_join_transaction(): joins the running transaction, starting one if none runs.</summary>
    public static BtrfsTransaction BtrfsJoinTransaction(BtrfsFsInfo fsInfo)
    {
        lock (fsInfo.TransLock)
        {
            BtrfsTransaction trans = fsInfo.RunningTransaction ??= new BtrfsTransaction(fsInfo, fsInfo.Generation + 1);
            trans.NumWriters++;
            return trans;
        }
    }

    /// <summary>btrfs_end_transaction(): leaves the transaction; the last writer out lets a committer proceed.</summary>
    public static void BtrfsEndTransaction(BtrfsTransaction trans)
    {
        bool wake;
        lock (trans.FsInfo.TransLock)
        {
            wake = --trans.NumWriters == 0;
        }

        if (wake)
        {
            Wait.WakeUpAll(trans.WriterWait);
        }
    }

    /// <summary>
    /// btrfs_commit_transaction(): commits the running transaction (if any): waits for its writers, advances
    /// the generation and writes the superblock. 0 or -errno.
    /// </summary>
    public static int BtrfsCommitTransaction(BtrfsFsInfo fsInfo)
    {
        using KFrame frame = KFunc.Enter("btrfs_commit_transaction");
        BtrfsTransaction trans;
        bool committer;
        lock (fsInfo.TransLock)
        {
            if (fsInfo.RunningTransaction is null)
            {
                return 0;
            }

            trans = fsInfo.RunningTransaction;
            committer = !trans.InCommit;
            trans.InCommit = true;
        }

        if (!committer)
        {
            Wait.WaitEvent(trans.CommitWait, static t => Volatile.Read(ref t.Committed), trans);
            return 0;
        }

        Wait.WaitEvent(trans.WriterWait, static t => Volatile.Read(ref t.NumWriters) == 0, trans);
        lock (fsInfo.TransLock)
        {
            fsInfo.RunningTransaction = null;
            fsInfo.SetGeneration(trans.Transid);
        }

        int ret = DiskIo.WriteCtreeSuper(fsInfo);
        Volatile.Write(ref trans.Committed, true);
        Wait.WakeUpAll(trans.CommitWait);
        return ret;
    }
}
